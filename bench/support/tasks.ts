// The measurements a load-client child can be asked for, what one round reports back, and how
// rounds combine into the reported figures; shared by the orchestrator and the child.

/**
 * How the client names the origin: an IP literal, or a name. Through a proxy the proxy resolves
 * the name; direct, the client asks `resolver` (host:port) for every new connection.
 */
export interface OriginAddress {
  readonly host: string;
  readonly port: number;
  readonly resolver: string | null;
}

/** `proxy: null` is the direct baseline: the same client talks to the origin itself. */
export type LoadTask =
  | { readonly kind: 'rps'; readonly origin: OriginAddress; readonly proxy: number | null; readonly connections: number; readonly durationMs: number; readonly warmupMs: number }
  | { readonly kind: 'tunnels'; readonly origin: OriginAddress; readonly proxy: number | null; readonly connections: number; readonly durationMs: number; readonly warmupMs: number }
  | { readonly kind: 'download'; readonly origin: OriginAddress; readonly proxy: number | null; readonly bytes: number }
  | { readonly kind: 'upload'; readonly origin: OriginAddress; readonly proxy: number | null; readonly bytes: number }
  | { readonly kind: 'latency'; readonly origin: OriginAddress; readonly proxy: number | null; readonly samples: number; readonly warmup: number };

/** A closed-loop rate: for `rps` a request is one keep-alive GET, for `tunnels` one whole new tunnel. */
export interface RpsRound {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** operations run, warm-up and failures included: the work the proxy's CPU time paid for */
  readonly operations: number;
  /** CPU the proxy's process tree spent per operation, in ms; null going direct or without /proc */
  readonly proxyCpuMs: number | null;
}

export interface TransferRound {
  /** 10^6 bytes per second */
  readonly mbPerSecond: number;
}

export interface LatencyRound {
  readonly samplesMs: readonly number[];
}

export interface RoundResults {
  readonly rps: RpsRound;
  /** new tunnels (CONNECT, small GET, close) per second, many at once */
  readonly tunnels: RpsRound;
  readonly download: TransferRound;
  readonly upload: TransferRound;
  readonly latency: LatencyRound;
}

export interface RpsResult extends RpsRound {
  /** requests/s of each round, in the order run; `rps`, `p50Ms`, `p99Ms` and `proxyCpuMs` are the rounds' medians */
  readonly rounds: readonly number[];
}

export interface TransferResult {
  /** the median round */
  readonly mbPerSecond: number;
  readonly rounds: readonly number[];
}

export interface LatencyResult {
  /** over the samples of every round together */
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
}

export interface TaskResults {
  readonly rps: RpsResult;
  readonly tunnels: RpsResult;
  readonly download: TransferResult;
  readonly upload: TransferResult;
  readonly latency: LatencyResult;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 0.5);
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function combineRates(rates: readonly RpsRound[]): RpsResult {
  return {
    requests: sum(rates.map((round) => round.requests)),
    errors: sum(rates.map((round) => round.errors)),
    seconds: sum(rates.map((round) => round.seconds)),
    rps: median(rates.map((round) => round.rps)),
    p50Ms: median(rates.map((round) => round.p50Ms)),
    p99Ms: median(rates.map((round) => round.p99Ms)),
    operations: sum(rates.map((round) => round.operations)),
    proxyCpuMs: rates.some((round) => round.proxyCpuMs === null) ? null : median(rates.map((round) => round.proxyCpuMs ?? 0)),
    rounds: rates.map((round) => round.rps),
  };
}

/** One slow round (another process took the CPU) must not decide a figure: medians, and pooled latency samples. */
export function combineRounds(rounds: readonly RoundResults[]): TaskResults {
  const transfer = (pick: (round: RoundResults) => TransferRound): TransferResult => {
    const speeds = rounds.map((round) => pick(round).mbPerSecond);
    return { mbPerSecond: median(speeds), rounds: speeds };
  };
  const samples = rounds.flatMap((round) => round.latency.samplesMs).sort((a, b) => a - b);
  return {
    rps: combineRates(rounds.map((round) => round.rps)),
    tunnels: combineRates(rounds.map((round) => round.tunnels)),
    download: transfer((round) => round.download),
    upload: transfer((round) => round.upload),
    latency: { samples: samples.length, p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99), meanMs: sum(samples) / samples.length },
  };
}
