// The load generator, run as a child process so it never shares an event loop with the proxy or
// the origin: performs one LoadTask given as JSON in argv and prints its result as one JSON line.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { download, latency, upload } from './raw-client.js';
import { percentile, type LoadTask, type RpsRound } from './tasks.js';

/**
 * N keep-alive connections, each with one request in flight. Through a proxy the request line is
 * absolute-form (RFC 9112 §3.2.2), as a plain-HTTP proxy client sends it.
 */
async function requestsPerSecond(task: Extract<LoadTask, { kind: 'rps' }>): Promise<RpsRound> {
  const originAuthority = `127.0.0.1:${task.origin}`;
  const pool = new Pool(`http://127.0.0.1:${task.proxy ?? task.origin}`, { connections: task.connections, pipelining: 1, keepAliveTimeout: 120_000 });
  const path = task.proxy === null ? '/small' : `http://${originAuthority}/small`;
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  const loop = async (until: number, record: boolean): Promise<void> => {
    while (performance.now() < until) {
      const started = performance.now();
      try {
        const response = await pool.request({ method: 'GET', path, headers: { host: originAuthority } });
        await response.body.arrayBuffer();
        if (!record) continue;
        if (response.statusCode === 200) {
          requests++;
          latencies.push(performance.now() - started);
        } else errors++;
      } catch {
        if (record) errors++;
      }
    }
  };
  const workers = (until: number, record: boolean): Promise<void[]> => Promise.all(Array.from({ length: task.connections }, () => loop(until, record)));
  try {
    await workers(performance.now() + task.warmupMs, false);
    const started = performance.now();
    await workers(started + task.durationMs, true);
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return { requests, errors, seconds, rps: requests / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
  } finally {
    await pool.close();
  }
}

function perform(task: LoadTask): Promise<unknown> {
  switch (task.kind) {
    case 'rps':
      return requestsPerSecond(task);
    case 'download':
      return download(task.origin, task.proxy, task.bytes);
    case 'upload':
      return upload(task.origin, task.proxy, task.bytes);
    case 'latency':
      return latency(task.origin, task.proxy, task.samples, task.warmup);
  }
}

const task = JSON.parse(process.argv[2] ?? '{}') as LoadTask;
perform(task).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`load client (${task.kind}): ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
