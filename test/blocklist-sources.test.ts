// sources.yaml: every mistake reported with file:line:column, per-source overrides, and the
// shipped defaults (OISD big and URLhaus enabled).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { SourceError } from '../src/config/yaml.js';
import { loadBlocklistConfig } from '../src/policy/blocklist/sources.js';
import { BLOCKLIST_FIXTURES } from './support/blocklist-fixtures.js';
import { freshDir } from './support/cli.js';

describe('sources.yaml', () => {
  test('names the file, line and key of every mistake', async (t) => {
    const dir = await freshDir(t, 'sluice-blocklist-sources-');
    const file = join(dir, 'sources.yaml');
    await writeFile(file, ['sources:', '  - name: a', '    url: http://127.0.0.1/x', '    format: domain', '  - name: a', '    url: ftp://x', '    format: hosts', '    intervall: 1h', ''].join('\n'));
    const error = await loadBlocklistConfig(file).then(
      () => assert.fail('expected a SourceError'),
      (thrown: unknown) => thrown,
    );
    assert.ok(error instanceof SourceError);
    const text = error.message;
    assert.match(text, new RegExp(`${file}:4:13: sources\\.0\\.format: `));
    assert.match(text, new RegExp(`${file}:6:10: sources\\.1\\.url: expected an http`));
    assert.match(text, /:8:5: sources\.1\.intervall: unknown key "intervall" \(did you mean "interval"\?\)/);
  });

  test('reports a duplicate source name at the second one', async (t) => {
    const file = join(await freshDir(t, 'sluice-blocklist-sources-'), 'sources.yaml');
    const source = (url: string): string[] => ['  - name: feed', `    url: ${url}`, '    format: domains'];
    await writeFile(file, ['sources:', ...source('http://127.0.0.1/a'), ...source('http://127.0.0.1/b'), ''].join('\n'));
    await assert.rejects(loadBlocklistConfig(file), (error: unknown) => error instanceof SourceError && error.message === `${file}:5:11: sources.1.name: duplicate source name "feed"`);
  });

  test('resolves local and allow files next to sources.yaml and applies per-source overrides', async (t) => {
    const dir = await freshDir(t, 'sluice-blocklist-sources-');
    const file = join(dir, 'sources.yaml');
    await writeFile(file, ['defaults:', '  interval: 2h', 'local: mine.txt', 'sources:', '  - name: feed', '    url: https://feeds.example/list', '    format: adblock', '    max_shrink: 0.9', ''].join('\n'));
    const config = await loadBlocklistConfig(file);
    assert.equal(config.localFile, join(dir, 'mine.txt'));
    assert.equal(config.allowFile, join(dir, 'allow.txt'));
    assert.deepEqual([config.sources[0]?.intervalMs, config.sources[0]?.maxShrink, config.sources[0]?.timeoutMs], [7_200_000, 0.9, 120_000]);
  });

  test('loads the shipped defaults: OISD big and URLhaus enabled, the others off', async () => {
    const config = await loadBlocklistConfig(join(BLOCKLIST_FIXTURES, '..', '..', '..', 'blocklists', 'sources.yaml'));
    assert.deepEqual(config.sources.map((source) => [source.name, source.format, source.intervalMs]), [
      ['oisd-big', 'wildcard', 6 * 3_600_000],
      ['urlhaus', 'hosts', 6 * 3_600_000],
    ]);
    assert.equal(config.sources[0]?.maxShrink, 0.5);
  });
});
