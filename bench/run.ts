// `npm run bench`: Sluice against a direct connection and against squid, in one run on 127.0.0.1,
// every process started here and stopped here; prints a table and writes bench/results/latest.json.
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_SETTINGS, addedLatency, measureInterleaved, ratios, type BenchSettings, type BenchTarget, type TargetMeasurement } from './proxy-throughput.js';
import { killAllNow, refuseNewChildren, runJsonScript, stopAll } from './support/children.js';
import { startOrigin } from './support/origin.js';
import { renderTable, type TargetOutcome } from './support/report.js';
import { sourceRevision } from './support/revision.js';
import { startSluice, REPO_ROOT } from './support/sluice-target.js';
import { findSquid, squidVersion, startSquid } from './support/squid-target.js';
import type { TaskResults } from './support/tasks.js';

/** The whole run, blocklist bench included, stays under three minutes or is stopped. */
const OVERALL_LIMIT_MS = 175_000;
const BLOCKLIST_SCRIPT = fileURLToPath(new URL('./blocklist.js', import.meta.url));

const QUICK_SETTINGS: BenchSettings = { connections: 8, durationMs: 1_000, warmupMs: 300, tunnelBytes: 64 * 1024 * 1024, latencySamples: 50, latencyWarmup: 5, rounds: 2 };

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'skip-blocklist': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    output: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'latest.json') },
  },
  strict: true,
});
const settings = options.quick ? QUICK_SETTINGS : DEFAULT_SETTINGS;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

let abandoned = false;

/** The temporary directory of this run, once made: removed however the run ends, unless --keep. */
let work: string | null = null;

async function removeWork(): Promise<void> {
  if (work !== null && !options.keep) await rm(work, { recursive: true, force: true });
}

/** Ends the run from a signal or the time limit: no measurement may start a process after this. */
function abandon(code: number, why: string): void {
  process.stderr.write(`bench: ${why}, stopping every process it started\n`);
  process.exitCode = code;
  abandoned = true;
  refuseNewChildren();
  void stopAll()
    .then(removeWork)
    .finally(() => process.exit(code));
}

interface StartedTarget extends BenchTarget {
  /** stops the target and reports what it recorded (Sluice: its audit chain's size) */
  stop(): Promise<Readonly<Record<string, number>>>;
}

interface PlannedTarget {
  readonly key: string;
  readonly label: string;
  /** how to start it, or why it cannot run */
  readonly start: (() => Promise<StartedTarget>) | string;
}

function plan(workDir: string, squidBinary: string | null): PlannedTarget[] {
  const sluice = (fsync: boolean): PlannedTarget => {
    const key = fsync ? 'sluice_fsync_on' : 'sluice_fsync_off';
    return {
      key,
      label: `sluice (fsync ${fsync ? 'on' : 'off'})`,
      start: async () => {
        const dir = join(workDir, key);
        await mkdir(dir);
        const running = await startSluice(dir, fsync);
        return { key, proxy: running.port, stop: running.stop };
      },
    };
  };
  const squid: PlannedTarget = {
    key: 'squid',
    label: 'squid',
    start:
      squidBinary === null
        ? 'squid not installed (apt-get install -y squid)'
        : async () => {
            const dir = join(workDir, 'squid');
            await mkdir(dir);
            const running = await startSquid(squidBinary, dir);
            return { key: 'squid', proxy: running.port, stop: async () => (await running.stop(), {}) };
          },
  };
  const direct: PlannedTarget = { key: 'direct', label: 'direct', start: () => Promise.resolve({ key: 'direct', proxy: null, stop: () => Promise.resolve({}) }) };
  return [direct, sluice(true), sluice(false), squid];
}

function progress(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Starts every target, measures them in interleaved rounds while all run, then stops them. */
async function measureAll(workDir: string, squidBinary: string | null): Promise<TargetOutcome[]> {
  const plans = plan(workDir, squidBinary);
  const missing = new Map<string, string>();
  const extras = new Map<string, Readonly<Record<string, number>>>();
  const started: StartedTarget[] = [];
  let measured = new Map<string, TargetMeasurement>();
  const origin = await startOrigin();
  try {
    for (const { key, label, start } of plans) {
      if (typeof start === 'string') missing.set(key, start);
      else {
        try {
          started.push(await start());
        } catch (error) {
          progress(`${label} did not start: ${message(error)}`);
          missing.set(key, `failed to start: ${message(error).split('\n')[0] ?? ''}`);
        }
      }
    }
    measured = await measureInterleaved(origin.port, started, settings, progress);
  } finally {
    for (const target of started) extras.set(target.key, await target.stop().catch(() => ({})));
    await origin.stop();
  }
  return plans.map(({ key, label }): TargetOutcome => {
    const measurement = measured.get(key);
    let why = missing.get(key) ?? null;
    if (measurement !== undefined && measurement.error !== null) {
      progress(`${label} failed: ${measurement.error}`);
      why = `failed: ${measurement.error.split('\n')[0] ?? ''}`;
    }
    return { key, label, results: measurement?.results ?? null, missing: why, extra: extras.get(key) ?? {} };
  });
}

function comparisons(outcomes: readonly TargetOutcome[]): Record<string, unknown> {
  const byKey = new Map(outcomes.map((outcome) => [outcome.key, outcome.results]));
  const direct = byKey.get('direct') ?? null;
  const squid = byKey.get('squid') ?? null;
  const result: Record<string, unknown> = {};
  for (const outcome of outcomes) {
    const results: TaskResults | null = outcome.results;
    if (outcome.key === 'direct' || results === null || direct === null) continue;
    result[outcome.key] = {
      vs_direct: ratios(results, direct),
      vs_squid: outcome.key === 'squid' || squid === null ? null : ratios(results, squid),
      added_latency_ms: addedLatency(results, direct),
    };
  }
  return result;
}

async function main(): Promise<number> {
  const workDir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  work = workDir;
  // squid drops root for an unprivileged user, which must still reach its own subdirectory.
  await chmod(workDir, 0o711);
  const squidBinary = await findSquid();
  try {
    const outcomes = await measureAll(workDir, squidBinary);

    // A stopped run must not overwrite the last complete result.
    if (abandoned) return 130;
    let blocklist: unknown = { skipped: 'not run (--skip-blocklist)' };
    if (!options['skip-blocklist']) {
      if (!(await exists(BLOCKLIST_SCRIPT))) blocklist = { skipped: 'bench/blocklist.ts not present' };
      else {
        process.stderr.write('bench: blocklist (bench/blocklist.ts)...\n');
        blocklist = await runJsonScript(BLOCKLIST_SCRIPT, [], 60_000).catch((error: unknown) => ({ failed: message(error) }));
      }
    }

    if (abandoned) return 130;
    process.stdout.write(`\n${renderTable(outcomes)}\n`);
    const cpu = cpus();
    const report = {
      generated_at: new Date().toISOString(),
      sluice: await sourceRevision(REPO_ROOT),
      host: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpu.length, cpu_model: cpu[0]?.model ?? 'unknown' },
      squid: squidBinary === null ? 'not installed' : { binary: squidBinary, version: await squidVersion(squidBinary) },
      settings: { ...settings, quick: options.quick },
      units: { rps: 'requests per second', mbPerSecond: '10^6 bytes per second', ms: 'milliseconds', ratios: 'target / baseline' },
      targets: Object.fromEntries(outcomes.map((outcome) => [outcome.key, outcome.results === null ? { missing: outcome.missing } : { ...outcome.results, ...outcome.extra }])),
      comparisons: comparisons(outcomes),
      blocklist,
    };
    const output = resolve(options.output);
    await mkdir(dirname(output), { recursive: true });
    await writeFile(output, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nwrote ${output}${options.keep ? `; logs and configs kept in ${workDir}` : ''}\n`);
    const failed = outcomes.filter((outcome) => outcome.results === null && outcome.missing?.startsWith('failed') === true);
    return failed.length === 0 ? 0 : 1;
  } finally {
    await stopAll();
    await removeWork();
  }
}

process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => abandon(130, signal));
const limit = setTimeout(() => abandon(1, `time limit of ${OVERALL_LIMIT_MS / 1000} s reached`), OVERALL_LIMIT_MS);
main().then(
  (code) => {
    clearTimeout(limit);
    process.exitCode = code;
  },
  (error: unknown) => {
    clearTimeout(limit);
    process.stderr.write(`bench: ${message(error)}\n`);
    process.exitCode = 1;
  },
);
