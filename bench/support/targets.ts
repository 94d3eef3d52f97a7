// Which targets a run measures and how each is started: the direct baseline, Sluice as the
// profile set configures it, and squid; a target that cannot run says why instead.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchTarget } from '../proxy-throughput.js';
import { monotonicMicros } from './cpu-profile.js';
import type { BenchOptions } from './options.js';
import { startSluice, type RealisticInputs } from './sluice-target.js';
import { startSquid, type SquidResolution } from './squid-target.js';

export interface StartedTarget extends BenchTarget {
  /** Sluice's admin port, where /metrics is */
  readonly metricsPort: number | null;
  /** when it was ready, on the CPU profile's clock: the profile is read from here on */
  readonly readyAtUs: number;
  readonly cpuProfileDir: string | null;
  /** stops the target and reports what it recorded (Sluice: its audit chain and decisions) */
  stop(): Promise<Readonly<Record<string, number>>>;
}

export interface PlannedTarget {
  readonly key: string;
  readonly label: string;
  /** how to start it, or why it cannot run */
  readonly start: (() => Promise<StartedTarget>) | string;
}

export interface TargetInputs {
  readonly workDir: string;
  readonly squidBinary: string | null;
  /** null in the minimal profile set */
  readonly realistic: RealisticInputs | null;
  readonly squidResolution: SquidResolution;
}

/** More than the idle tunnels, which each count as a client connection. */
const MAX_CONNECTIONS = 50_000;

export function planTargets(options: BenchOptions, inputs: TargetInputs): PlannedTarget[] {
  const { workDir, realistic } = inputs;
  const sluice = (key: string, label: string, fsync: boolean): PlannedTarget => ({
    key,
    label,
    start: async () => {
      const dir = join(workDir, key);
      const cpuProfileDir = options.cpuProfile ? join(dir, 'cpu-profile') : null;
      await mkdir(dir);
      const running = await startSluice(dir, { fsync, realistic, workers: options.sluiceWorkers, cpuProfileDir, maxConnections: MAX_CONNECTIONS });
      return { key, proxy: running.port, pid: running.pid, metricsPort: running.adminPort, readyAtUs: monotonicMicros(), cpuProfileDir, stop: running.stop };
    },
  });
  const { squidBinary } = inputs;
  const squid: PlannedTarget = {
    key: 'squid',
    label: options.squidWorkers > 1 ? `squid (${options.squidWorkers} workers)` : 'squid',
    start:
      squidBinary === null
        ? 'squid not installed (apt-get install -y squid)'
        : async () => {
            const dir = join(workDir, 'squid');
            await mkdir(dir);
            const running = await startSquid(squidBinary, dir, { resolution: inputs.squidResolution, workers: options.squidWorkers });
            const stop = async (): Promise<Record<string, number>> => (await running.stop(), {});
            return { key: 'squid', proxy: running.port, pid: running.pid, metricsPort: null, readyAtUs: monotonicMicros(), cpuProfileDir: null, stop };
          },
  };
  const direct: PlannedTarget = {
    key: 'direct',
    label: 'direct',
    start: () => Promise.resolve({ key: 'direct', proxy: null, pid: null, metricsPort: null, readyAtUs: monotonicMicros(), cpuProfileDir: null, stop: () => Promise.resolve({}) }),
  };
  const sluices =
    options.profileSet === 'realistic'
      ? [sluice('sluice', 'sluice (realistic)', true)]
      : [sluice('sluice_fsync_on', 'sluice (fsync on)', true), sluice('sluice_fsync_off', 'sluice (fsync off)', false)];
  return [direct, ...sluices, squid];
}
