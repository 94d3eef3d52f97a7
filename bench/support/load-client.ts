// The load generator, run as a child process so it never shares an event loop with the proxy or
// the origin: performs one LoadTask given as JSON in argv and prints its result as one JSON line.
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { originLookup } from './origin-lookup.js';
import { download, latency, oneExchange, OriginPath, upload } from './raw-client.js';
import { percentile, type LoadTask, type RpsRound } from './tasks.js';

type RateTask = Extract<LoadTask, { kind: 'rps' | 'tunnels' }>;

/**
 * `task.connections` clients, each repeating `operation` back to back (one in flight each) for
 * the warm-up, then for the measured time. An operation resolves true when it succeeded.
 */
async function closedLoop(task: RateTask, operation: () => Promise<boolean>): Promise<RpsRound> {
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  let operations = 0;
  const loop = async (until: number, record: boolean): Promise<void> => {
    while (performance.now() < until) {
      const started = performance.now();
      const ok = await operation().catch(() => false);
      operations++;
      if (!record) continue;
      if (ok) {
        requests++;
        latencies.push(performance.now() - started);
      } else errors++;
    }
  };
  const clients = (until: number, record: boolean): Promise<void[]> => Promise.all(Array.from({ length: task.connections }, () => loop(until, record)));
  await clients(performance.now() + task.warmupMs, false);
  const started = performance.now();
  await clients(started + task.durationMs, true);
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  // The proxy's CPU is read around this whole process by the bench, which fills proxyCpuMs.
  return { requests, errors, seconds, rps: requests / seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), operations, proxyCpuMs: null };
}

/**
 * Keep-alive GETs over a pool of connections. Through a proxy the request line is absolute-form
 * (RFC 9112 §3.2.2), as a plain-HTTP proxy client sends it.
 */
async function requestsPerSecond(task: RateTask): Promise<RpsRound> {
  const { origin, proxy } = task;
  const authority = `${origin.host}:${origin.port}`;
  const lookup = originLookup(origin);
  const pool = new Pool(proxy === null ? `http://${authority}` : `http://127.0.0.1:${proxy}`, {
    connections: task.connections,
    pipelining: 1,
    keepAliveTimeout: 120_000,
    ...(lookup === undefined ? {} : { connect: { lookup } }),
  });
  const path = proxy === null ? '/small' : `http://${authority}/small`;
  try {
    return await closedLoop(task, async () => {
      const response = await pool.request({ method: 'GET', path, headers: { host: authority } });
      await response.body.arrayBuffer();
      return response.statusCode === 200;
    });
  } finally {
    await pool.close();
  }
}

/** New tunnels: each operation is a fresh connection, CONNECT, a small GET and close. */
function tunnelsPerSecond(task: RateTask): Promise<RpsRound> {
  const path = new OriginPath(task.origin, task.proxy);
  return closedLoop(task, () => oneExchange(path).then(() => true));
}

function perform(task: LoadTask): Promise<unknown> {
  switch (task.kind) {
    case 'rps':
      return requestsPerSecond(task);
    case 'tunnels':
      return tunnelsPerSecond(task);
    case 'download':
      return download(new OriginPath(task.origin, task.proxy), task.bytes);
    case 'upload':
      return upload(new OriginPath(task.origin, task.proxy), task.bytes);
    case 'latency':
      return latency(new OriginPath(task.origin, task.proxy), task.samples, task.warmup);
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
