// `sluice check` through the real CLI: the shipped rules pass, every error of every file is
// printed as file:line:column with exit 1, configs pull in their rule files.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freshDir, REPO_ROOT, runSluice, type CliResult } from './support/cli.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'rules');
// `check` never writes state, but a config without state_dir still resolves one: keep it out of the checkout.
const ENV = { ...process.env, SLUICE_STATE_DIR: tmpdir() };

function sluice(args: readonly string[], cwd = REPO_ROOT): Promise<CliResult> {
  return runSluice(args, { cwd, env: ENV });
}

describe('sluice check', () => {
  test('accepts the shipped rules/ directory', async () => {
    const result = await sluice(['check', 'rules']);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^ok: 1 file, \d+ rules\n$/);
    assert.equal(result.code, 0);
  });

  test('prints every error of every file as file:line:column and exits 1', async () => {
    const result = await sluice(['check', 'test/fixtures/rules/broken', 'test/fixtures/rules/duplicate']);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 11);
    assert.equal(lines[0], 'test/fixtures/rules/broken/bad-fields.yaml:4:13: rules.0.hosts.0: invalid re2 pattern "^(api$": missing ): ^(api$');
    assert.ok(lines.includes('test/fixtures/rules/broken/public-suffix.yaml:5:13: rules.0.hosts.0: wildcard "*.com" covers every domain under the public suffix "com"; name the registrable domain instead'));
    assert.ok(lines.includes('test/fixtures/rules/duplicate/b.yml:5:9: rules.1.id: duplicate rule id "shared", first defined at test/fixtures/rules/duplicate/a.yaml:2:9'));
    for (const line of lines.slice(0, -1)) assert.match(line, /^test\/fixtures\/rules\/[a-z/.-]+:\d+:\d+: \S/);
    assert.equal(lines.at(-1), 'sluice check: 10 errors');
  });

  test('checks a config together with the rule files it names, reporting errors of both', async (t) => {
    const dir = await freshDir(t, 'sluice-check-');
    const config = join(dir, 'sluice.yaml');
    await writeFile(config, `mode: strictt\nrules: [${JSON.stringify(join(FIXTURES, 'broken', 'public-suffix.yaml'))}]\n`);
    const result = await sluice(['check', config]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^${escape(config)}:1:7: mode: `, 'm'));
    // The config's own error stops it before its rules are read, as `sluice run` would.
    await writeFile(config, `mode: strict\nrules: [${JSON.stringify(join(FIXTURES, 'broken', 'public-suffix.yaml'))}]\n`);
    const second = await sluice(['check', config]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`^${escape(join(FIXTURES, 'broken', 'public-suffix.yaml'))}:5:13: rules\\.0\\.hosts\\.0: wildcard "\\*\\.com"`, 'm'));
  });

  test('counts a rule file reached directly and through a config once', async (t) => {
    const dir = await freshDir(t, 'sluice-check-');
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'a.yaml'), 'rules:\n  - {id: a, action: allow, hosts: [a.example.com]}\n  - {id: b, action: deny, hosts: [b.example.com]}\n');
    await writeFile(join(dir, 'sluice.yaml'), 'mode: strict\nblocklists: sources.yaml\n');
    await writeFile(join(dir, 'sources.yaml'), 'sources: []\n');
    const result = await sluice(['check', 'sluice.yaml', 'rules'], dir);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout, 'ok: 3 files, 2 rules\n', 'config, rule file and blocklist sources, each once');
    assert.equal(result.code, 0);
  });

  test('reports a path that does not exist and a directory without YAML files', async (t) => {
    const dir = await freshDir(t, 'sluice-check-');
    const result = await sluice(['check', join(dir, 'missing.yaml'), dir]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, new RegExp(`^${escape(join(dir, 'missing.yaml'))}:1:1: cannot read: ENOENT`, 'm'));
    assert.match(result.stderr, new RegExp(`^${escape(dir)}:1:1: no \\*\\.yaml or \\*\\.yml files in this directory$`, 'm'));
  });

  test('checks a signed-bundle document with the bundle schema', async () => {
    const result = await sluice(['check', 'examples/bundle/allowlist.yaml']);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^ok: 1 file, \d+ rules\n$/);
    assert.equal(result.code, 0);
  });

  test('reports a blocklist sources file error through the config that names it', async (t) => {
    const dir = await freshDir(t, 'sluice-check-');
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'a.yaml'), 'rules: []\n');
    await writeFile(join(dir, 'sluice.yaml'), 'blocklists: sources.yaml\n');
    await writeFile(join(dir, 'sources.yaml'), 'sources:\n  - name: feed\n    url: https://feed.example/list\n    format: no-such-format\n');
    const result = await sluice(['check', 'sluice.yaml'], dir);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /sources\.yaml:4:\d+: /);
  });

  test('refuses to run without a path', async () => {
    const result = await sluice(['check']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /name at least one file or directory/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
