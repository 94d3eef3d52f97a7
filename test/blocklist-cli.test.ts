// `sluice blocklist check|refresh`: which source and entry block a host, exit codes, warnings,
// failures kept visible, and registration with the sluice command.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { blocklistCommand } from '../src/cli/blocklist.js';
import { BLOCKLIST_FIXTURES } from './support/blocklist-fixtures.js';
import { runCommand, runSluice, type CliResult } from './support/cli.js';
import { startFeedServer, type FeedServer } from './support/feed-server.js';

let server: FeedServer;
let dir: string;
let sources: string;

function sluice(...argv: string[]): Promise<CliResult> {
  return runCommand(blocklistCommand, argv, { SLUICE_STATE_DIR: join(dir, 'state'), HOME: dir });
}

before(async () => {
  server = await startFeedServer();
  server.set('/oisd', { body: await readFile(join(BLOCKLIST_FIXTURES, 'oisd-domainswild2.txt'), 'utf8') });
  server.set('/urlhaus', { body: await readFile(join(BLOCKLIST_FIXTURES, 'urlhaus-hostfile.txt'), 'utf8') });
  dir = await mkdtemp(join(tmpdir(), 'sluice-blocklist-cli-'));
  sources = join(dir, 'sources.yaml');
  await writeFile(join(dir, 'allow.txt'), 'cdn.evil.example\n');
  await writeFile(
    sources,
    ['sources:', '  - name: oisd-big', `    url: ${server.url('/oisd')}`, '    format: wildcard', '  - name: urlhaus', `    url: ${server.url('/urlhaus')}`, '    format: hosts', ''].join('\n'),
  );
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('sluice blocklist', () => {
  test('warns that no copy exists before the first refresh', async () => {
    const ran = await sluice('check', 'evil.example', '--sources', sources);
    assert.equal(ran.code, 0);
    assert.match(ran.stderr, /source oisd-big has no copy on disk yet/);
  });

  test('refresh downloads every source and reports each outcome', async () => {
    const ran = await sluice('refresh', '--sources', sources);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout, 'oisd-big: updated, 8 entries\nurlhaus: updated, 4 entries\n');
  });

  test('check names the source and the entry that block a host, and exits 1', async () => {
    const ran = await sluice('check', 'Login.Phish-Login.TEST', '--sources', sources);
    assert.equal(ran.code, 1);
    assert.equal(ran.stdout, 'blocked: login.phish-login.test is listed by oisd-big (entry phish-login.test)\n');
  });

  test('check finds a listed address written in another notation', async () => {
    const ran = await sluice('check', '3325256727', '--sources', sources);
    assert.equal(ran.code, 1);
    assert.equal(ran.stdout, 'blocked: 198.51.100.23 is listed by urlhaus (entry 198.51.100.23)\n');
  });

  test('check says which allow-exception lets a listed name through', async () => {
    const ran = await sluice('check', 'img.cdn.evil.example', '--sources', sources);
    assert.equal(ran.code, 0);
    assert.equal(ran.stdout, 'not blocked: img.cdn.evil.example is covered by the allow-exception cdn.evil.example\n');
  });

  test('check passes an unlisted host', async () => {
    const ran = await sluice('check', 'example.org', '--sources', sources);
    assert.deepEqual([ran.code, ran.stdout], [0, 'not blocked: example.org is on no blocklist\n']);
  });

  test('refresh exits 1 and names the failure when a feed is down, keeping its copy', async () => {
    server.set('/urlhaus', { status: 500 });
    const ran = await sluice('refresh', '--sources', sources);
    assert.equal(ran.code, 1);
    assert.match(ran.stdout, /^urlhaus: error, 4 entries: HTTP 500/m);
    assert.equal((await sluice('check', 'mozi-c2.test', '--sources', sources)).code, 1);
  });

  test('rejects a bad sources file with file:line and exit 1, like every command given a bad config', async () => {
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, 'sources:\n  - name: x\n    url: http://127.0.0.1/\n    format: hostfile\n');
    const ran = await sluice('check', 'a.example', '--sources', broken);
    assert.equal(ran.code, 1);
    assert.match(ran.stderr, new RegExp(`^${broken}:4:13: sources\\.0\\.format: `));
  });

  test('rejects a bad host or bad usage with exit 2', async () => {
    assert.equal((await sluice('check', 'bad host', '--sources', sources)).code, 2);
    assert.equal((await sluice('check')).code, 2);
  });

  test('is registered with the sluice command', async () => {
    const ran = await runSluice(['blocklist', 'check', 'a.evil.example', '--sources', sources], {
      env: { SLUICE_STATE_DIR: join(dir, 'state'), HOME: dir, PATH: process.env.PATH ?? '' },
    });
    assert.equal(ran.code, 1);
    assert.equal(ran.stdout, 'blocked: a.evil.example is listed by oisd-big (entry evil.example)\n');
  });
});
