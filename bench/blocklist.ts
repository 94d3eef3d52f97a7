// Measures the blocklist with 1,000,000 generated domains: median lookup time, load time from
// the disk cache and from a fresh download, RSS added, and the longest event-loop stall.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, stat, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { normaliseHost } from '../src/destination.js';
import { BlocklistManager } from '../src/policy/blocklist/manager.js';
import { normaliseEntry } from '../src/policy/blocklist/normalise.js';
import type { BlocklistSet } from '../src/policy/blocklist/set.js';
import { parseBlocklistConfig } from '../src/policy/blocklist/sources.js';
import { NameGenerator } from './support/domains.js';

const COUNT = Number(process.env.BLOCKLIST_BENCH_COUNT ?? 1_000_000);
/** the same seed as always, so figures stay comparable with earlier runs */
const generator = new NameGenerator(7);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function measureLookups(set: BlocklistSet, listed: string[]): { medianNs: number; hits: number } {
  const hosts: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const name = listed[generator.random(listed.length)] ?? '';
    const kind = generator.random(3);
    hosts.push(kind === 0 ? name : kind === 1 ? `www.cdn.${name}` : `${generator.label()}.${generator.label()}.example`);
  }
  const perLookup: number[] = [];
  let hits = 0;
  for (let round = 0; round < 60; round++) {
    const start = process.hrtime.bigint();
    for (const host of hosts) if (set.match(host) !== null) hits++;
    perLookup.push(Number(process.hrtime.bigint() - start) / hosts.length);
  }
  // The first rounds run before the JIT has optimised match(); the proxy's steady state is what counts.
  return { medianNs: median(perLookup.slice(10)), hits };
}

function measureNormalise(names: string[]): { fastNs: number; fullNs: number } {
  const sample = names.slice(0, 200_000);
  let start = performance.now();
  for (const name of sample) normaliseEntry(name);
  const fastNs = ((performance.now() - start) * 1e6) / sample.length;
  start = performance.now();
  for (const name of sample) normaliseHost(name);
  const fullNs = ((performance.now() - start) * 1e6) / sample.length;
  return { fastNs, fullNs };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-blocklist-bench-'));
  try {
    const names = generator.domains(COUNT);
    const feed = join(dir, 'feed.txt');
    await writeFile(feed, `# Project: generated\n# Syntax: Domains (including possible subdomains)\n${names.join('\n')}\n`);
    const feedBytes = (await stat(feed)).size;
    const normalise = measureNormalise(names);

    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain', etag: '"bench"' });
      createReadStream(feed).pipe(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/domainswild2`;
    const config = parseBlocklistConfig(join(dir, 'sources.yaml'), `sources:\n  - name: generated\n    url: ${url}\n    format: wildcard\n`);

    globalThis.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const delay = monitorEventLoopDelay({ resolution: 1 });
    let longestTick = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      longestTick = Math.max(longestTick, now - last);
      last = now;
    }, 1);
    delay.enable();
    const downloaded = new BlocklistManager({ config, cacheDir: join(dir, 'cache') });
    await downloaded.load();
    let start = performance.now();
    const [report] = await downloaded.refreshAll();
    const downloadMs = performance.now() - start;
    delay.disable();
    clearInterval(ticker);
    globalThis.gc?.();
    const rssAfter = process.memoryUsage().rss;
    await downloaded.stop();
    server.close();

    const cacheDir = join(dir, 'cache2');
    await mkdir(cacheDir);
    await copyFile(join(dir, 'cache', 'generated.list'), join(cacheDir, 'generated.list'));
    await copyFile(join(dir, 'cache', 'generated.json'), join(cacheDir, 'generated.json'));
    const cached = new BlocklistManager({ config, cacheDir });
    start = performance.now();
    const set = await cached.load();
    const cacheMs = performance.now() - start;
    await cached.stop();

    // A first pass warms the JIT and the table's pages, as a proxy's steady state has.
    measureLookups(set, names);
    const lookups = measureLookups(set, names);
    console.log(
      JSON.stringify(
        {
          domains: COUNT,
          feedSize: mb(feedBytes),
          entriesLoaded: report?.entries,
          outcome: report?.outcome,
          medianLookupNs: Math.round(lookups.medianNs),
          loadFromCacheMs: Math.round(cacheMs),
          loadFromDownloadMs: Math.round(downloadMs),
          rssAdded: mb(rssAfter - rssBefore),
          tableSize: mb(set.sources.reduce((sum, source) => sum + source.list.names.byteLength, 0)),
          gcExposed: globalThis.gc !== undefined,
          longestStallMs: { eventLoopDelayMax: Number((delay.max / 1e6).toFixed(1)), longestTimerGap: Number(longestTick.toFixed(1)) },
          normaliseNsPerName: { fastPath: Math.round(normalise.fastNs), normaliseHost: Math.round(normalise.fullNs) },
        },
        null,
        2,
      ),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
