// The proxy measurements (direct, Sluice, squid): keep-alive forwarding rate, CONNECT tunnel
// throughput both ways, one fresh CONNECT plus a small request, new tunnels/s, in interleaved rounds.
import { fileURLToPath } from 'node:url';
import { runJsonScript } from './support/children.js';
import { treeCpuMillis } from './support/limits.js';
import { combineRounds, type LoadTask, type OriginAddress, type RoundResults, type RpsRound, type TaskResults } from './support/tasks.js';

const LOAD_CLIENT = fileURLToPath(new URL('./support/load-client.js', import.meta.url));

export interface BenchSettings {
  /** concurrent keep-alive clients for the forwarding rate */
  readonly connections: number;
  /** per round: the measured forwarding time, and the unmeasured warm-up before it */
  readonly durationMs: number;
  readonly warmupMs: number;
  /** bytes moved through the tunnel in each direction, per round */
  readonly tunnelBytes: number;
  /** per round: fresh CONNECT+GET exchanges timed, after a few untimed ones */
  readonly latencySamples: number;
  readonly latencyWarmup: number;
  /** concurrent clients opening new tunnels (CONNECT, small GET, close), for durationMs after warmupMs */
  readonly tunnelClients: number;
  readonly rounds: number;
  /** tunnels opened and held idle through each proxy, and for how long, before the rounds */
  readonly idleTunnels: number;
  readonly idleHoldMs: number;
}

export const DEFAULT_SETTINGS: BenchSettings = {
  connections: 16,
  durationMs: 2_500,
  warmupMs: 500,
  tunnelBytes: 256 * 1024 * 1024,
  latencySamples: 100,
  latencyWarmup: 10,
  tunnelClients: 32,
  rounds: 3,
  idleTunnels: 10_000,
  idleHoldMs: 5_000,
};

export interface BenchTarget {
  readonly key: string;
  /** the proxy's port on 127.0.0.1, or null to go to the origin directly */
  readonly proxy: number | null;
  /** the proxy's process (the root of its tree); null for the direct baseline */
  readonly pid: number | null;
}

export type TargetMeasurement = { readonly results: TaskResults; readonly error: null } | { readonly results: null; readonly error: string };

/** Queries the bench's DNS server has answered so far, to attribute lookups to the target under load. */
export type QueryCounter = () => Promise<number>;

function run<K extends LoadTask['kind']>(task: Extract<LoadTask, { kind: K }>, timeoutMs: number): Promise<RoundResults[K]> {
  return runJsonScript(LOAD_CLIENT, [JSON.stringify(task)], timeoutMs) as Promise<RoundResults[K]>;
}

/**
 * A closed-loop rate with the proxy's CPU time per operation: the gap to squid in requests/s is
 * either CPU spent or time waited, and this tells which.
 */
async function rateWithCpu(task: Extract<LoadTask, { kind: 'rps' | 'tunnels' }>, pid: number | null, timeoutMs: number): Promise<RpsRound> {
  const before = pid === null ? null : await treeCpuMillis(pid);
  const round = await run(task, timeoutMs);
  const after = pid === null ? null : await treeCpuMillis(pid);
  const proxyCpuMs = before === null || after === null || round.operations === 0 ? null : (after - before) / round.operations;
  return { ...round, proxyCpuMs };
}

/** The measurements of one round for one target, one after another so they never compete. */
async function measureRound(origin: OriginAddress, target: BenchTarget, settings: BenchSettings): Promise<RoundResults> {
  const { proxy, pid } = target;
  const rate = { origin, proxy, durationMs: settings.durationMs, warmupMs: settings.warmupMs };
  const rateLimit = settings.durationMs + settings.warmupMs + 20_000;
  const rps = await rateWithCpu({ kind: 'rps', ...rate, connections: settings.connections }, pid, rateLimit);
  const download = await run({ kind: 'download', origin, proxy, bytes: settings.tunnelBytes }, 30_000);
  const upload = await run({ kind: 'upload', origin, proxy, bytes: settings.tunnelBytes }, 30_000);
  const latency = await run({ kind: 'latency', origin, proxy, samples: settings.latencySamples, warmup: settings.latencyWarmup }, 30_000);
  const tunnels = await rateWithCpu({ kind: 'tunnels', ...rate, connections: settings.tunnelClients }, pid, rateLimit);
  return { rps, tunnels, download, upload, latency };
}

export interface InterleavedResults {
  readonly measured: Map<string, TargetMeasurement>;
  /** DNS queries answered while each target was under load (only with a query counter) */
  readonly dnsQueries: Map<string, number>;
}

/**
 * Every round measures every target in turn, each round starting one target later, so that load
 * from elsewhere on the machine spreads over all targets instead of landing on whichever ran then.
 */
export async function measureInterleaved(
  origin: OriginAddress,
  targets: readonly BenchTarget[],
  settings: BenchSettings,
  progress: (line: string) => void,
  countQueries: QueryCounter | null,
): Promise<InterleavedResults> {
  const rounds = new Map<string, RoundResults[]>(targets.map((target) => [target.key, []]));
  const failures = new Map<string, string>();
  const dnsQueries = new Map<string, number>();
  for (let round = 0; round < settings.rounds; round++) {
    for (let index = 0; index < targets.length; index++) {
      const target = targets[(index + round) % targets.length];
      if (target === undefined || failures.has(target.key)) continue;
      progress(`round ${round + 1}/${settings.rounds}: ${target.key}`);
      const before = (await countQueries?.()) ?? 0;
      try {
        rounds.get(target.key)?.push(await measureRound(origin, target, settings));
      } catch (error) {
        failures.set(target.key, error instanceof Error ? error.message : String(error));
      }
      if (countQueries !== null) dnsQueries.set(target.key, (dnsQueries.get(target.key) ?? 0) + (await countQueries()) - before);
    }
  }
  const measured = new Map(
    targets.map((target): [string, TargetMeasurement] => {
      const failure = failures.get(target.key);
      return [target.key, failure === undefined ? { results: combineRounds(rounds.get(target.key) ?? []), error: null } : { results: null, error: failure }];
    }),
  );
  return { measured, dnsQueries };
}

/** target / baseline: above 1 is faster for throughput, slower for latency. */
export interface Ratios {
  readonly rps: number;
  readonly newTunnelsPerSecond: number;
  readonly downloadMbPerSecond: number;
  readonly uploadMbPerSecond: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
}

export function ratios(target: TaskResults, baseline: TaskResults): Ratios {
  return {
    rps: target.rps.rps / baseline.rps.rps,
    newTunnelsPerSecond: target.tunnels.rps / baseline.tunnels.rps,
    downloadMbPerSecond: target.download.mbPerSecond / baseline.download.mbPerSecond,
    uploadMbPerSecond: target.upload.mbPerSecond / baseline.upload.mbPerSecond,
    latencyP50: target.latency.p50Ms / baseline.latency.p50Ms,
    latencyP99: target.latency.p99Ms / baseline.latency.p99Ms,
  };
}

/** What the proxy adds to one fresh connection and small request, over going direct. */
export function addedLatency(target: TaskResults, direct: TaskResults): { readonly p50Ms: number; readonly p99Ms: number } {
  return { p50Ms: target.latency.p50Ms - direct.latency.p50Ms, p99Ms: target.latency.p99Ms - direct.latency.p99Ms };
}
