// The proxy measurements (direct, Sluice, squid): keep-alive forwarding rate, CONNECT tunnel
// throughput both ways, and the time of one fresh CONNECT plus a small request, in interleaved rounds.
import { fileURLToPath } from 'node:url';
import { runJsonScript } from './support/children.js';
import { combineRounds, type LoadTask, type RoundResults, type TaskResults } from './support/tasks.js';

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
  readonly rounds: number;
}

export const DEFAULT_SETTINGS: BenchSettings = {
  connections: 16,
  durationMs: 2_500,
  warmupMs: 500,
  tunnelBytes: 256 * 1024 * 1024,
  latencySamples: 100,
  latencyWarmup: 10,
  rounds: 3,
};

export interface BenchTarget {
  readonly key: string;
  /** the proxy's port on 127.0.0.1, or null to go to the origin directly */
  readonly proxy: number | null;
}

export type TargetMeasurement = { readonly results: TaskResults; readonly error: null } | { readonly results: null; readonly error: string };

function run<K extends LoadTask['kind']>(task: Extract<LoadTask, { kind: K }>, timeoutMs: number): Promise<RoundResults[K]> {
  return runJsonScript(LOAD_CLIENT, [JSON.stringify(task)], timeoutMs) as Promise<RoundResults[K]>;
}

/** The four measurements of one round for one target, one after another so they never compete. */
async function measureRound(origin: number, proxy: number | null, settings: BenchSettings): Promise<RoundResults> {
  const rps = await run({ kind: 'rps', origin, proxy, connections: settings.connections, durationMs: settings.durationMs, warmupMs: settings.warmupMs }, settings.durationMs + settings.warmupMs + 20_000);
  const download = await run({ kind: 'download', origin, proxy, bytes: settings.tunnelBytes }, 30_000);
  const upload = await run({ kind: 'upload', origin, proxy, bytes: settings.tunnelBytes }, 30_000);
  const latency = await run({ kind: 'latency', origin, proxy, samples: settings.latencySamples, warmup: settings.latencyWarmup }, 30_000);
  return { rps, download, upload, latency };
}

/**
 * Every round measures every target in turn, each round starting one target later, so that load
 * from elsewhere on the machine spreads over all targets instead of landing on whichever ran then.
 */
export async function measureInterleaved(origin: number, targets: readonly BenchTarget[], settings: BenchSettings, progress: (line: string) => void): Promise<Map<string, TargetMeasurement>> {
  const rounds = new Map<string, RoundResults[]>(targets.map((target) => [target.key, []]));
  const failures = new Map<string, string>();
  for (let round = 0; round < settings.rounds; round++) {
    for (let index = 0; index < targets.length; index++) {
      const target = targets[(index + round) % targets.length];
      if (target === undefined || failures.has(target.key)) continue;
      progress(`round ${round + 1}/${settings.rounds}: ${target.key}`);
      try {
        rounds.get(target.key)?.push(await measureRound(origin, target.proxy, settings));
      } catch (error) {
        failures.set(target.key, error instanceof Error ? error.message : String(error));
      }
    }
  }
  return new Map(
    targets.map((target): [string, TargetMeasurement] => {
      const failure = failures.get(target.key);
      return [target.key, failure === undefined ? { results: combineRounds(rounds.get(target.key) ?? []), error: null } : { results: null, error: failure }];
    }),
  );
}

/** target / baseline: above 1 is faster for throughput, slower for latency. */
export interface Ratios {
  readonly rps: number;
  readonly downloadMbPerSecond: number;
  readonly uploadMbPerSecond: number;
  readonly latencyP50: number;
  readonly latencyP99: number;
}

export function ratios(target: TaskResults, baseline: TaskResults): Ratios {
  return {
    rps: target.rps.rps / baseline.rps.rps,
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
