// `npm run bench -- [options]`: what a run measures and how long it may take, read once from
// argv; a bad value stops the bench before it starts anything.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SETTINGS, type BenchSettings } from '../proxy-throughput.js';

export type ProfileSet = 'realistic' | 'minimal';

export interface BenchOptions {
  readonly profileSet: ProfileSet;
  readonly settings: BenchSettings;
  readonly quick: boolean;
  readonly skipBlocklist: boolean;
  readonly keep: boolean;
  /** null: print only (a profiled run does not overwrite the figures on record unless told to) */
  readonly output: string | null;
  /** run the Sluice targets under --cpu-prof and print their top functions */
  readonly cpuProfile: boolean;
  readonly squidWorkers: number;
  readonly sluiceWorkers: number | null;
  /** the whole run, blocklist bench included, is stopped after this */
  readonly limitMs: number;
}

const QUICK_SETTINGS: BenchSettings = {
  connections: 8,
  durationMs: 1_000,
  warmupMs: 300,
  tunnelBytes: 64 * 1024 * 1024,
  latencySamples: 50,
  latencyWarmup: 5,
  tunnelClients: 16,
  rounds: 2,
  idleTunnels: 1_000,
  idleHoldMs: 2_000,
};

/**
 * A realistic run took five and a half minutes and a minimal one seven while other test suites
 * kept the two cores busy (load average 10 to 16); the limit leaves room above that.
 */
const LIMIT_MS = 600_000;

function count(text: string | undefined, option: string, minimum: number): number | null {
  if (text === undefined) return null;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < minimum) throw new Error(`--${option}: expected a whole number of at least ${minimum}, got ${JSON.stringify(text)}`);
  return value;
}

export function readOptions(argv: readonly string[], repoRoot: string): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'profile-set': { type: 'string', default: 'realistic' },
      quick: { type: 'boolean', default: false },
      'skip-blocklist': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      output: { type: 'string' },
      profile: { type: 'boolean', default: false },
      workers: { type: 'string' },
      'sluice-workers': { type: 'string' },
      'idle-tunnels': { type: 'string' },
    },
    strict: true,
  });
  const profileSet = values['profile-set'];
  if (profileSet !== 'realistic' && profileSet !== 'minimal') throw new Error(`--profile-set: expected realistic or minimal, got ${JSON.stringify(profileSet)}`);
  const base = values.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;
  const idleTunnels = count(values['idle-tunnels'], 'idle-tunnels', 0);
  const defaultOutput = values.profile ? null : join(repoRoot, 'bench', 'results', 'latest.json');
  return {
    profileSet,
    settings: idleTunnels === null ? base : { ...base, idleTunnels },
    quick: values.quick,
    skipBlocklist: values['skip-blocklist'],
    keep: values.keep,
    output: values.output ?? defaultOutput,
    cpuProfile: values.profile,
    squidWorkers: count(values.workers, 'workers', 1) ?? 1,
    sluiceWorkers: count(values['sluice-workers'], 'sluice-workers', 1),
    limitMs: LIMIT_MS,
  };
}
