// The proxy measurements for one target (direct, Sluice, squid): keep-alive forwarding rate,
// CONNECT tunnel throughput both ways, and the time of one fresh CONNECT plus a small request.
import { fileURLToPath } from 'node:url';
import { runJsonScript } from './support/children.js';
import type { LoadTask, TaskResults } from './support/tasks.js';

const LOAD_CLIENT = fileURLToPath(new URL('./support/load-client.js', import.meta.url));

export interface BenchSettings {
  /** concurrent keep-alive clients for the forwarding rate */
  readonly connections: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  /** bytes moved through the tunnel in each direction, per round */
  readonly tunnelBytes: number;
  readonly tunnelRounds: number;
  readonly latencySamples: number;
  readonly latencyWarmup: number;
}

export const DEFAULT_SETTINGS: BenchSettings = {
  connections: 16,
  durationMs: 5_000,
  warmupMs: 1_000,
  tunnelBytes: 256 * 1024 * 1024,
  tunnelRounds: 3,
  latencySamples: 300,
  latencyWarmup: 30,
};

function run<K extends LoadTask['kind']>(task: Extract<LoadTask, { kind: K }>, timeoutMs: number): Promise<TaskResults[K]> {
  return runJsonScript(LOAD_CLIENT, [JSON.stringify(task)], timeoutMs) as Promise<TaskResults[K]>;
}

/** Runs the four measurements one after another, so they never compete with each other. */
export async function measureTarget(origin: number, proxy: number | null, settings: BenchSettings): Promise<TaskResults> {
  const rps = await run({ kind: 'rps', origin, proxy, connections: settings.connections, durationMs: settings.durationMs, warmupMs: settings.warmupMs }, settings.durationMs + settings.warmupMs + 20_000);
  const transfer = { origin, proxy, bytes: settings.tunnelBytes, rounds: settings.tunnelRounds };
  const download = await run({ kind: 'download', ...transfer }, 45_000);
  const upload = await run({ kind: 'upload', ...transfer }, 45_000);
  const latency = await run({ kind: 'latency', origin, proxy, samples: settings.latencySamples, warmup: settings.latencyWarmup }, 30_000);
  return { rps, download, upload, latency };
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
