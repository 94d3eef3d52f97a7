// The measurements a load-client child can be asked for, and what each reports back; shared by
// the orchestrator (bench/run.ts) and the child (load-client.ts) so both sides agree on the JSON.

/** `proxy: null` is the direct baseline: the same client talks to the origin itself. */
export type LoadTask =
  | { readonly kind: 'rps'; readonly origin: number; readonly proxy: number | null; readonly connections: number; readonly durationMs: number; readonly warmupMs: number }
  | { readonly kind: 'download'; readonly origin: number; readonly proxy: number | null; readonly bytes: number; readonly rounds: number }
  | { readonly kind: 'upload'; readonly origin: number; readonly proxy: number | null; readonly bytes: number; readonly rounds: number }
  | { readonly kind: 'latency'; readonly origin: number; readonly proxy: number | null; readonly samples: number; readonly warmup: number };

export interface RpsResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface TransferResult {
  /** bytes per round */
  readonly bytes: number;
  /** 10^6 bytes per second: the median round, and every round in the order run */
  readonly mbPerSecond: number;
  readonly rounds: readonly number[];
}

export interface LatencyResult {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

export interface TaskResults {
  readonly rps: RpsResult;
  readonly download: TransferResult;
  readonly upload: TransferResult;
  readonly latency: LatencyResult;
}

export type ResultOf<K extends LoadTask['kind']> = TaskResults[K];

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}
