// BlocklistManager against feeds served on 127.0.0.1: download and swap, ETag/304, start from the
// disk copy, outage and shrink keep the last good copy, caps, upstream proxy, timers, local files.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/obs/log.js';
import { Metrics } from '../src/obs/metrics.js';
import { BlocklistManager, type BlocklistManagerOptions } from '../src/policy/blocklist/manager.js';
import { loadBlocklistConfig } from '../src/policy/blocklist/sources.js';
import { BLOCKLIST_FIXTURES } from './support/blocklist-fixtures.js';
import { freshDir } from './support/cli.js';
import { startConnectProxy } from './support/connect-proxy.js';
import { startFeedServer, type FeedServer } from './support/feed-server.js';
import { ManualClock } from './support/manual-clock.js';

interface Harness {
  readonly dir: string;
  readonly manager: BlocklistManager;
  readonly metrics: Metrics;
  readonly logs: Array<Record<string, unknown>>;
}

let server: FeedServer;
let oisd: string;
let urlhaus: string;
const managers: BlocklistManager[] = [];

before(async () => {
  server = await startFeedServer();
  oisd = await readFile(join(BLOCKLIST_FIXTURES, 'oisd-domainswild2.txt'), 'utf8');
  urlhaus = await readFile(join(BLOCKLIST_FIXTURES, 'urlhaus-hostfile.txt'), 'utf8');
});

after(async () => {
  await Promise.all(managers.map((manager) => manager.stop()));
  await server.close();
});

// Removed after every manager above has stopped (after hooks run in the order they are registered).
const root = await freshDir({ after }, 'sluice-blocklist-');

function caseDir(): Promise<string> {
  return mkdtemp(join(root, 'case-'));
}

function sourcesYaml(prefix: string, oisdExtra = '', urlhausExtra = ''): string {
  return [
    'defaults:',
    '  interval: 1h',
    '  timeout: 5s',
    'sources:',
    '  - name: oisd-big',
    `    url: ${server.url(`/${prefix}/oisd`)}`,
    '    format: wildcard',
    oisdExtra,
    '  - name: urlhaus',
    `    url: ${server.url(`/${prefix}/urlhaus`)}`,
    '    format: hosts',
    urlhausExtra,
    '',
  ].join('\n');
}

async function harness(dir: string, yaml: string, extra: Pick<BlocklistManagerOptions, 'clock' | 'random'> = {}): Promise<Harness> {
  await writeFile(join(dir, 'sources.yaml'), yaml);
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const metrics = new Metrics({ processMetrics: false });
  const config = await loadBlocklistConfig(join(dir, 'sources.yaml'));
  const manager = new BlocklistManager({ config, cacheDir: join(dir, 'cache'), metrics, logger, ...extra });
  managers.push(manager);
  return { dir, manager, metrics, logs };
}

describe('blocklist refresh', () => {
  test('downloads each feed, swaps in the new set and writes the last-known-good copy', async () => {
    server.set('/a/oisd', { body: oisd });
    server.set('/a/urlhaus', { body: urlhaus });
    const { manager, metrics } = await harness(await caseDir(), sourcesYaml('a'));
    assert.equal((await manager.load()).match('a.evil.example'), null);
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => [report.source, report.outcome, report.entries]), [
      ['oisd-big', 'updated', 8],
      ['urlhaus', 'updated', 4],
    ]);
    assert.deepEqual(manager.current.match('a.evil.example'), { source: 'oisd-big', entry: 'evil.example' });
    assert.deepEqual(manager.current.matchAddress('198.51.100.23'), { source: 'urlhaus', entry: '198.51.100.23' });
    const exposition = await metrics.registry.metrics();
    assert.match(exposition, /sluice_blocklist_entries\{source="oisd-big"\} 8/);
    assert.match(exposition, /sluice_blocklist_refresh_total\{source="urlhaus",outcome="updated"\} 1/);
    assert.match(exposition, /sluice_blocklist_last_success_timestamp_seconds\{source="oisd-big"\} [0-9]{10}/);
  });

  test('revalidates with If-None-Match and If-Modified-Since and keeps the copy on 304', async () => {
    server.set('/b/oisd', { body: oisd });
    server.set('/b/urlhaus', { body: urlhaus });
    const { manager } = await harness(await caseDir(), sourcesYaml('b'));
    await manager.load();
    await manager.refreshAll();
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => report.outcome), ['not_modified', 'not_modified']);
    const revalidation = server.requests.filter((request) => request.path === '/b/oisd').at(-1);
    assert.match(String(revalidation?.headers['if-none-match']), /^"[0-9a-f]{16}"$/);
    assert.equal(revalidation?.headers['if-modified-since'], 'Mon, 23 Nov 2026 12:00:00 GMT');
    assert.notEqual(manager.current.match('evil.example'), null);
  });

  test('blocks from the on-disk copy at start, before any download', async () => {
    server.set('/c/oisd', { body: oisd });
    server.set('/c/urlhaus', { body: urlhaus });
    const dir = await caseDir();
    const first = await harness(dir, sourcesYaml('c'));
    await first.manager.load();
    await first.manager.refreshAll();
    const seen = server.requests.length;
    const restarted = await harness(dir, sourcesYaml('c'));
    const set = await restarted.manager.load();
    assert.deepEqual(set.match('cdn.evil.example'), { source: 'oisd-big', entry: 'cdn.evil.example' });
    assert.deepEqual(set.match('drop.malware.example'), { source: 'urlhaus', entry: 'drop.malware.example' });
    assert.equal(server.requests.length, seen);
  });

  test('keeps the last good entries through a feed outage', async () => {
    server.set('/d/oisd', { body: oisd });
    server.set('/d/urlhaus', { body: urlhaus });
    const { manager, logs } = await harness(await caseDir(), sourcesYaml('d'));
    await manager.load();
    await manager.refreshAll();
    server.set('/d/oisd', { status: 503 });
    server.set('/d/urlhaus', { status: 404 });
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => report.outcome), ['error', 'error']);
    assert.match(reports[0]?.detail ?? '', /HTTP 503/);
    assert.notEqual(manager.current.match('evil.example'), null);
    assert.notEqual(manager.current.match('mozi-c2.test'), null);
    assert.ok(logs.some((line) => line.msg === 'blocklist refresh failed; keeping the last good copy'));
  });

  test('keeps the last good entries when the feed host refuses connections', async () => {
    server.set('/e/oisd', { body: oisd });
    server.set('/e/urlhaus', { body: urlhaus });
    const dir = await caseDir();
    const first = await harness(dir, sourcesYaml('e'));
    await first.manager.load();
    await first.manager.refreshAll();
    const unreachable = sourcesYaml('e').replaceAll(/127\.0\.0\.1:[0-9]+/g, '127.0.0.1:1');
    const { manager } = await harness(dir, unreachable);
    await manager.load();
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => report.outcome), ['error', 'error']);
    assert.notEqual(manager.current.match('evil.example'), null);
  });

  test('refuses and alerts on a download that shrinks a feed by more than max_shrink', async () => {
    server.set('/f/oisd', { body: oisd });
    server.set('/f/urlhaus', { body: urlhaus });
    const dir = await caseDir();
    const { manager, logs, metrics } = await harness(dir, sourcesYaml('f'));
    await manager.load();
    await manager.refreshAll();
    server.set('/f/oisd', { body: '# Project: oisd big\nevil.example\nphish-login.test\n' });
    const reports = await manager.refreshAll();
    assert.equal(reports[0]?.outcome, 'shrink_refused');
    assert.equal(reports[0]?.entries, 8);
    assert.notEqual(manager.current.match('ads.tracker.example'), null);
    assert.ok(logs.some((line) => line.alert === 'blocklist_shrink_refused' && line.level === 50));
    assert.match(await metrics.registry.metrics(), /sluice_blocklist_refresh_total\{source="oisd-big",outcome="shrink_refused"\} 1/);
    const restarted = await harness(dir, sourcesYaml('f'));
    assert.notEqual((await restarted.manager.load()).match('ads.tracker.example'), null, 'the refused download never reached the disk copy');
    const forced = await manager.refreshAll({ acceptShrink: true });
    assert.equal(forced[0]?.outcome, 'updated');
    assert.equal(manager.current.match('ads.tracker.example'), null);
  });

  test('refuses a feed over its byte or entry cap and keeps the old copy', async () => {
    server.set('/g/oisd', { body: oisd });
    server.set('/g/urlhaus', { body: urlhaus });
    const { manager } = await harness(await caseDir(), sourcesYaml('g', '    max_entries: 8', '    max_bytes: 2048'));
    await manager.load();
    await manager.refreshAll();
    server.set('/g/oisd', { body: `${oisd}one-more.example\n` });
    server.set('/g/urlhaus', { body: `${urlhaus}${'127.0.0.1 padding.example\n'.repeat(100)}` });
    const reports = await manager.refreshAll();
    assert.equal(reports[0]?.outcome, 'too_large');
    assert.match(reports[0]?.detail ?? '', /more than 8 entries/);
    assert.equal(reports[1]?.outcome, 'too_large');
    assert.match(reports[1]?.detail ?? '', /2048-byte cap/);
    assert.equal(manager.current.match('padding.example'), null);
    assert.notEqual(manager.current.match('evil.example'), null);
    assert.equal(manager.current.match('one-more.example'), null);
  });

  test('counts a single-label line in a feed as malformed instead of blocking a whole TLD', async () => {
    server.set('/n/oisd', { body: `${oisd}com\n` });
    server.set('/n/urlhaus', { body: `${urlhaus}127.0.0.1 zip\n` });
    const { manager, logs } = await harness(await caseDir(), sourcesYaml('n'));
    await manager.load();
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => [report.outcome, report.entries]), [['updated', 8], ['updated', 4]]);
    assert.equal(manager.current.match('shop.com'), null);
    assert.equal(manager.current.match('file.zip'), null);
    const warning = logs.find((line) => line.msg === 'blocklist feed has malformed lines' && line.source === 'oisd-big');
    assert.match(JSON.stringify(warning?.examples), /single-label name would block a whole top-level domain/);
  });

  test('enforces the byte cap while streaming a body that declares no length', async () => {
    server.set('/j/oisd', { body: `${oisd}${'padding.example\n'.repeat(200)}`, chunked: true });
    server.set('/j/urlhaus', { body: urlhaus, chunked: true });
    const { manager } = await harness(await caseDir(), sourcesYaml('j', '    max_bytes: 2048'));
    await manager.load();
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => report.outcome), ['too_large', 'updated']);
    assert.match(reports[0]?.detail ?? '', /sent more than the 2048-byte cap/);
    assert.equal(manager.current.match('padding.example'), null);
  });

  test('fetches through the configured upstream proxy', async (t) => {
    const proxy = await startConnectProxy();
    t.after(() => proxy.close());
    server.set('/k/oisd', { body: oisd });
    server.set('/k/urlhaus', { body: urlhaus });
    const { manager } = await harness(await caseDir(), `proxy: ${proxy.url}\n${sourcesYaml('k')}`);
    await manager.load();
    const reports = await manager.refreshAll();
    assert.deepEqual(reports.map((report) => report.outcome), ['updated', 'updated']);
    assert.ok(proxy.tunnels.length >= 1);
    assert.ok(proxy.tunnels.every((target) => target === new URL(server.url('/')).host));
    await manager.stop();
  });

  test('loads a disk copy larger than a since-lowered entry cap rather than dropping it', async () => {
    server.set('/l/oisd', { body: oisd });
    server.set('/l/urlhaus', { body: urlhaus });
    const dir = await caseDir();
    const first = await harness(dir, sourcesYaml('l'));
    await first.manager.load();
    await first.manager.refreshAll();
    const lowered = await harness(dir, sourcesYaml('l', '    max_entries: 2'));
    assert.notEqual((await lowered.manager.load()).match('ads.tracker.example'), null);
  });

  test('refreshes again when its jittered interval has passed', async () => {
    server.set('/m/oisd', { body: oisd });
    server.set('/m/urlhaus', { body: urlhaus });
    const clock = new ManualClock();
    // random 0.75 stretches the 1 h interval by jitter 0.1 × (2 × 0.75 − 1): to 63 minutes
    const { manager } = await harness(await caseDir(), sourcesYaml('m'), { clock, random: () => 0.75 });
    const fetches = (): number => server.requests.filter((request) => request.path === '/m/oisd').length;
    await manager.load();
    await manager.refreshAll();
    const minute = 60_000;
    clock.advance(10 * minute);
    await manager.start();
    assert.deepEqual(clock.delays(), [50 * minute, 50 * minute], 'due an interval after the copy on disk was checked');
    const before = fetches();
    clock.advance(50 * minute - 1);
    assert.equal(fetches(), before);
    clock.advance(1);
    await clock.timersWaiting(2);
    assert.equal(fetches(), before + 1);
    assert.deepEqual(clock.delays(), [63 * minute, 63 * minute], 'the next wait is the jittered interval');
    clock.advance(63 * minute - 1);
    assert.equal(fetches(), before + 1);
    clock.advance(1);
    await clock.timersWaiting(2);
    assert.equal(fetches(), before + 2);
    await manager.stop();
    assert.deepEqual(clock.delays(), [], 'stop cancels every timer');
  });

  test('applies local.txt entries and allow.txt exceptions', async () => {
    server.set('/h/oisd', { body: oisd });
    server.set('/h/urlhaus', { body: urlhaus });
    const dir = await caseDir();
    await writeFile(join(dir, 'local.txt'), '# ours\ninternal-exfil.example\n203.0.113.66\nnot a name\nzip\n');
    await writeFile(join(dir, 'allow.txt'), 'cdn.evil.example\n');
    const { manager, logs } = await harness(dir, sourcesYaml('h'));
    await manager.load();
    await manager.refreshAll();
    assert.deepEqual(manager.current.match('x.internal-exfil.example'), { source: 'local', entry: 'internal-exfil.example' });
    assert.deepEqual(manager.current.matchAddress('203.0.113.66'), { source: 'local', entry: '203.0.113.66' });
    assert.equal(manager.current.match('a.cdn.evil.example'), null);
    assert.deepEqual(manager.current.match('invoice.zip'), { source: 'local', entry: 'zip' }, 'operators may block a whole TLD');
    assert.notEqual(manager.current.match('www.evil.example'), null);
    assert.ok(logs.some((line) => String(line.problem).includes('local.txt:4:1:')));
  });

  test('fetches a source with no disk copy as soon as it starts', async () => {
    server.set('/i/oisd', { body: oisd });
    server.set('/i/urlhaus', { body: urlhaus });
    const clock = new ManualClock();
    const { manager } = await harness(await caseDir(), sourcesYaml('i'), { clock });
    await manager.start();
    assert.equal(manager.current.match('evil.example'), null);
    assert.deepEqual(clock.delays(), [0, 0]);
    clock.advance(0);
    await clock.timersWaiting(2);
    assert.notEqual(manager.current.match('evil.example'), null);
    await manager.stop();
  });
});
