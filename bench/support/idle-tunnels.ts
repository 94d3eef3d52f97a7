// The idle-tunnels measurement: many CONNECT tunnels held open and idle through one proxy, with
// the proxy's resident memory and (for Sluice) its event-loop delay while they are held.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { jsonLines, sleep, startChild, stopChild } from './children.js';
import type { IdleClientArgs, IdleClosed, IdleOpened } from './idle-client.js';
import { treeRss } from './limits.js';
import { sampleSum, scrape } from './prometheus.js';
import type { OriginAddress } from './tasks.js';

const IDLE_CLIENT = fileURLToPath(new URL('./idle-client.js', import.meta.url));
const MB = 1024 * 1024;
/** prom-client's default eventLoopMonitoringPrecision: its histogram records whole sampling intervals */
export const LAG_RESOLUTION_MS = 10;

export interface IdleTarget {
  readonly proxy: number;
  readonly pid: number;
  /** Sluice's admin port (its /metrics); null for squid */
  readonly metricsPort: number | null;
}

export interface IdleSettings {
  readonly count: number;
  readonly holdMs: number;
  readonly concurrency: number;
}

/** Event-loop delay from nodejs_eventloop_lag_*: each figure covers the time since the previous scrape. */
export interface EventLoopFigures {
  /** while the tunnels were being opened */
  readonly openingP99Ms: number;
  /** while they were held idle: the figure the goal is about */
  readonly heldP99Ms: number;
  readonly heldMaxMs: number;
  /** what the proxy itself counted as open tunnels during the hold */
  readonly tunnelsActive: number;
}

export interface IdleResult {
  /** tunnels tried: the number asked for, or fewer when the open-files limit allows no more */
  readonly attempted: number;
  readonly opened: number;
  readonly failed: number;
  readonly firstError: string | null;
  readonly stillOpenAtEnd: number;
  readonly openSeconds: number;
  readonly rssBeforeMb: number;
  /** the highest resident size seen during the hold */
  readonly rssHeldMb: number;
  readonly rssPerTunnelKb: number;
  readonly processes: number;
  readonly eventLoop: EventLoopFigures | null;
  /**
   * The same p99, measured the same way in the bench's own, nearly idle process during the hold:
   * what the machine's other load alone does to an event loop, to read the proxy's figure against.
   */
  readonly controlLagP99Ms: number;
}

export async function measureIdle(origin: OriginAddress, target: IdleTarget, settings: IdleSettings): Promise<IdleResult> {
  const before = await treeRss(target.pid);
  const metrics = target.metricsPort;
  // A scrape resets prom-client's delay histogram, so the next one covers only what follows.
  if (metrics !== null) await scrape(metrics);
  const args: IdleClientArgs = { origin, proxy: target.proxy, count: settings.count, concurrency: settings.concurrency };
  const child = startChild(process.execPath, [IDLE_CLIENT, JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const next = jsonLines(child);
  try {
    const opened = (await next()) as IdleOpened;
    const opening = metrics === null ? null : await scrape(metrics);
    let held = before;
    const control = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
    control.enable();
    for (let waited = 0; waited < settings.holdMs; waited += 500) {
      await sleep(500);
      const now = await treeRss(target.pid);
      if (now.bytes > held.bytes) held = now;
    }
    control.disable();
    const holding = metrics === null ? null : await scrape(metrics);
    child.stdin?.write('close\n');
    const closed = (await next()) as IdleClosed;
    const eventLoop =
      opening === null || holding === null
        ? null
        : {
            openingP99Ms: sampleSum(opening, 'nodejs_eventloop_lag_p99_seconds') * 1000,
            heldP99Ms: sampleSum(holding, 'nodejs_eventloop_lag_p99_seconds') * 1000,
            heldMaxMs: sampleSum(holding, 'nodejs_eventloop_lag_max_seconds') * 1000,
            tunnelsActive: sampleSum(holding, 'sluice_connections_active', 'kind="tunnel"'),
          };
    return {
      attempted: settings.count,
      opened: opened.opened,
      failed: opened.failed,
      firstError: opened.firstError,
      stillOpenAtEnd: closed.stillOpen,
      openSeconds: opened.openSeconds,
      rssBeforeMb: before.bytes / MB,
      rssHeldMb: held.bytes / MB,
      rssPerTunnelKb: opened.opened === 0 ? 0 : (held.bytes - before.bytes) / 1024 / opened.opened,
      processes: held.processes,
      eventLoop,
      controlLagP99Ms: control.percentile(99) / 1e6,
    };
  } finally {
    await stopChild(child);
  }
}
