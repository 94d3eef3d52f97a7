// `npm run bench`: Sluice against a direct connection and against squid, in one run on 127.0.0.1,
// every process started here and stopped here; prints a table and writes bench/results/latest.json.
import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_SETTINGS, addedLatency, measureTarget, ratios, type BenchSettings } from './proxy-throughput.js';
import { killAllNow, refuseNewChildren, runJsonScript, stopAll } from './support/children.js';
import { startOrigin } from './support/origin.js';
import { renderTable, type TargetOutcome } from './support/report.js';
import { startSluice, REPO_ROOT } from './support/sluice-target.js';
import { findSquid, squidVersion, startSquid } from './support/squid-target.js';
import type { TaskResults } from './support/tasks.js';

/** The whole run, blocklist bench included, stays under three minutes or is stopped. */
const OVERALL_LIMIT_MS = 175_000;
const BLOCKLIST_SCRIPT = fileURLToPath(new URL('./blocklist.js', import.meta.url));

const QUICK_SETTINGS: BenchSettings = { connections: 8, durationMs: 2_000, warmupMs: 500, tunnelBytes: 64 * 1024 * 1024, tunnelRounds: 1, latencySamples: 100, latencyWarmup: 10 };

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

type Proxied = { port: number; stop: () => Promise<Readonly<Record<string, number>>> };

async function measure(key: string, label: string, origin: number, start: () => Promise<Proxied | null>): Promise<TargetOutcome> {
  if (abandoned) return { key, label, results: null, missing: 'not run: the bench was stopped', extra: {} };
  process.stderr.write(`bench: ${label}...\n`);
  let target: Proxied | null = null;
  try {
    target = await start();
    const results = await measureTarget(origin, target?.port ?? null, settings);
    const extra = target === null ? {} : await target.stop();
    target = null;
    return { key, label, results, missing: null, extra };
  } catch (error) {
    process.stderr.write(`bench: ${label} failed: ${message(error)}\n`);
    return { key, label, results: null, missing: `failed: ${message(error).split('\n')[0] ?? ''}`, extra: {} };
  } finally {
    await target?.stop().catch(() => ({}));
  }
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
  const outcomes: TargetOutcome[] = [];
  try {
    const origin = await startOrigin();
    try {
      outcomes.push(await measure('direct', 'direct', origin.port, () => Promise.resolve(null)));
      for (const fsync of [true, false]) {
        const key = fsync ? 'sluice_fsync_on' : 'sluice_fsync_off';
        outcomes.push(await measure(key, `sluice (fsync ${fsync ? 'on' : 'off'})`, origin.port, async () => {
          const dir = join(workDir, key);
          await mkdir(dir);
          const sluice = await startSluice(dir, fsync);
          return { port: sluice.port, stop: sluice.stop };
        }));
      }
      if (squidBinary === null) outcomes.push({ key: 'squid', label: 'squid', results: null, missing: 'squid not installed (apt-get install -y squid)', extra: {} });
      else {
        outcomes.push(await measure('squid', 'squid', origin.port, async () => {
          const dir = join(workDir, 'squid');
          await mkdir(dir);
          const squid = await startSquid(squidBinary, dir);
          return { port: squid.port, stop: async () => (await squid.stop(), {}) };
        }));
      }
    } finally {
      await origin.stop();
    }

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
