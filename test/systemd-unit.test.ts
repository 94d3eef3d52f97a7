// The systemd unit: clean under `systemd-analyze verify`, exposure at most 2.0 under
// `systemd-analyze security --offline=yes`, and carrying the hardening the appliance promises.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../src/config/package-root.js';

const run = promisify(execFile);
const UNIT = join(PACKAGE_ROOT, 'systemd', 'sluice.service');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('systemd unit', () => {
  test('carries the hardening directives the appliance promises', async () => {
    const text = await readFile(UNIT, 'utf8');
    const directives = new Map<string, string[]>();
    for (const line of text.split('\n')) {
      const match = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (match?.[1] !== undefined) directives.set(match[1], [...(directives.get(match[1]) ?? []), match[2] ?? '']);
    }
    const one = (key: string): string | undefined => directives.get(key)?.[0];
    assert.equal(one('User'), 'sluice');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('ProtectHome'), 'yes');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('StateDirectory'), 'sluice');
    assert.equal(one('LogsDirectory'), 'sluice');
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX AF_NETLINK');
    assert.equal(one('SystemCallFilter'), '@system-service');
    assert.match(one('MemoryMax') ?? '', /^\d+[KMG]$/);
    assert.equal(one('Restart'), 'always');
    // The guard goes in privileged before start and nothing removes it on stop (fail closed).
    assert.match(one('ExecStartPre') ?? '', /^\+.* nft apply /);
    assert.ok(![...directives.keys()].some((key) => key.startsWith('ExecStop')), 'no ExecStop*: the guard must outlive the process');
  });

  test('passes systemd-analyze verify', { skip: !hasAnalyze && 'systemd-analyze missing' }, async () => {
    const { stderr } = await run('systemd-analyze', ['verify', UNIT]);
    assert.equal(stderr.trim(), '');
  });

  test('scores an exposure of at most 2.0 in systemd-analyze security --offline=yes', { skip: !hasAnalyze && 'systemd-analyze missing' }, async () => {
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT]);
    const match = /Overall exposure level for sluice\.service: (\d+\.\d+)/.exec(stdout);
    assert.ok(match?.[1] !== undefined, stdout.slice(-500));
    assert.ok(Number(match[1]) <= 2.0, `exposure ${match[1]}`);
  });
});
