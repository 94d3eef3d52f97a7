// Measures what a fleet's shared state costs per call against a local redis-server: an inference
// budget's reserve and settle (embedded journal with fsync, then Redis), and a shared rate-limit
// take, each as sequential round trips (p50, p99) and budget calls from two replicas at once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisRate } from '../src/ingress/redis-rate.js';
import { BudgetLimits, EmbeddedBudgets, RedisBudgets, type BudgetAccounts } from '../src/meter/index.js';
import type { PlanRequest } from '../src/meter/budgets.js';
import { createLogger } from '../src/obs/log.js';
import { startRedisServer } from '../test/support/redis-server.js';

const CALLS = Number(process.env.FLEET_BENCH_CALLS ?? 2_000);
const log = createLogger('silent');
const budgets = [{ agent: 'bench', hourly: Number.MAX_SAFE_INTEGER - 1 }];
const request: PlanRequest = { agent: { name: 'bench', groups: [], mode: 'learn', via: 'token' }, inputEstimate: 100, outputBound: 200, choices: 1, defaultBound: 4096 };

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (share: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0) * 1000);
  return { p50: at(0.5), p99: at(0.99) };
}

/** Microseconds per reserve-and-settle, one call after another. */
async function sequential(accounts: BudgetAccounts): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  for (let call = 0; call < CALLS; call += 1) {
    const started = performance.now();
    const plan = await accounts.plan(request);
    if (plan.kind !== 'go') throw new Error(`the bench budget refused a call: ${JSON.stringify(plan)}`);
    await accounts.settle(plan.reservation, { at: Date.now(), request_id: `b${call}`, agent: 'bench', subjects: plan.reservation.subjects, model: 'm', input: 100, output: 150, estimated: false });
    samples.push(performance.now() - started);
  }
  return percentiles(samples);
}

/** Reserve-and-settle calls per second with `inFlight` calls at once, spread over the replicas. */
async function concurrent(replicas: readonly BudgetAccounts[], inFlight: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (index: number): Promise<void> => {
    const accounts = replicas[index % replicas.length] as BudgetAccounts;
    while (next < CALLS) {
      next += 1;
      const plan = await accounts.plan(request);
      if (plan.kind !== 'go') throw new Error('the bench budget refused a call');
      await accounts.settle(plan.reservation, { at: Date.now(), request_id: `c${next}`, agent: 'bench', subjects: plan.reservation.subjects, model: 'm', input: 100, output: 150, estimated: false });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, index) => worker(index)));
  return Math.round(CALLS / ((performance.now() - started) / 1000));
}

const dir = await mkdtemp(join(tmpdir(), 'sluice-fleet-bench-'));
const redis = await startRedisServer();
const clients = [new Redis(redis.url), new Redis(redis.url)];
try {
  const embedded = await EmbeddedBudgets.open(dir, budgets, Date.now, log);
  const embeddedFigures = await sequential(embedded);
  await embedded.close();
  const limits = new BudgetLimits(budgets);
  const replicas = clients.map((client) => new RedisBudgets({ redis: client, keyPrefix: 'bench:', limits, agents: ['bench'], leaseMs: 600_000, now: Date.now, log }));
  const redisFigures = await sequential(replicas[0] as RedisBudgets);
  const perSecond = await concurrent(replicas, 32);
  const rate = new RedisRate(clients[0] as Redis, 'bench:', Date.now);
  const takes: number[] = [];
  for (let take = 0; take < CALLS; take += 1) {
    const started = performance.now();
    await rate.take('bench', 1_000_000, 1_000_000);
    takes.push(performance.now() - started);
  }
  const rows = [
    ['budget reserve+settle, embedded journal (fsync)', embeddedFigures.p50, embeddedFigures.p99],
    ['budget reserve+settle, Redis', redisFigures.p50, redisFigures.p99],
    ['shared rate-limit take, Redis', percentiles(takes).p50, percentiles(takes).p99],
  ] as const;
  console.log(`${'what'.padEnd(50)}  p50 µs  p99 µs`);
  for (const [what, p50, p99] of rows) console.log(`${what.padEnd(50)}  ${String(p50).padStart(6)}  ${String(p99).padStart(6)}`);
  console.log(`budget reserve+settle through two replicas, 32 at once: ${perSecond} calls/s (${CALLS} calls)`);
} finally {
  await Promise.all(clients.map((client) => client.quit()));
  await redis.close();
  await rm(dir, { recursive: true, force: true });
}
