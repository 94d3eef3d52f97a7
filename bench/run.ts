// `npm run bench`: Sluice against a direct connection and against squid, in one run on 127.0.0.1,
// every process started here and stopped here; prints a table and writes bench/results/latest.json.
import { chmod, mkdir, mkdtemp, rm, writeFile, access } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { addedLatency, measureInterleaved, ratios, type TargetMeasurement } from './proxy-throughput.js';
import { killAllNow, refuseNewChildren, runJsonScript, stopAll } from './support/children.js';
import { monotonicMicros, renderProfile, summariseProfiles } from './support/cpu-profile.js';
import { prepareEnvironment, type BenchEnvironment } from './support/environment.js';
import { measureIdle } from './support/idle-tunnels.js';
import { openFileLimit } from './support/limits.js';
import { readOptions, type BenchOptions } from './support/options.js';
import { renderTable, type TargetOutcome } from './support/report.js';
import { sourceRevision } from './support/revision.js';
import { REPO_ROOT } from './support/sluice-target.js';
import { findSquid, squidVersion } from './support/squid-target.js';
import { planTargets, type StartedTarget } from './support/targets.js';

const BLOCKLIST_SCRIPT = fileURLToPath(new URL('./blocklist.js', import.meta.url));
/** Files a proxy keeps besides two sockets per tunnel: listeners, logs, the audit chain, its own clients. */
const FILE_RESERVE = 256;

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The first line of an error and, when its message goes on (a log tail), the last one, which usually says why. */
function headline(error: unknown): string {
  const lines = message(error).split('\n').filter((line) => line.trim() !== '');
  const first = lines[0] ?? '';
  const last = lines.at(-1) ?? first;
  return first === last ? first : `${first}: ${last}`;
}

const startedAt = performance.now();

/** Each line says how far into the run it is, so a slow step shows before the time limit does. */
function progress(line: string): void {
  process.stderr.write(`bench ${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s: ${line}\n`);
}

let options: BenchOptions;
try {
  options = readOptions(process.argv.slice(2), REPO_ROOT);
} catch (error) {
  process.stderr.write(`bench: ${message(error)}\n`);
  process.exit(2);
}

let abandoned = false;
/** The temporary directory of this run, once made: removed however the run ends, unless kept. */
let work: string | null = null;
const keepWork = options.keep || options.cpuProfile;

async function removeWork(): Promise<void> {
  if (work !== null && !keepWork) await rm(work, { recursive: true, force: true });
}

/** Ends the run from a signal or the time limit: no measurement may start a process after this. */
function abandon(code: number, why: string): void {
  progress(`${why}, stopping every process it started`);
  process.exitCode = code;
  abandoned = true;
  refuseNewChildren();
  void stopAll()
    .then(removeWork)
    .finally(() => process.exit(code));
}

/** Holds idle tunnels through one proxy: as many as asked, or as its open-files limit allows. */
async function idleFor(environment: BenchEnvironment, target: StartedTarget): Promise<TargetOutcome['idle']> {
  if (target.proxy === null || target.pid === null || options.settings.idleTunnels === 0) return null;
  const limit = await openFileLimit(target.pid);
  const count = Math.min(options.settings.idleTunnels, Math.floor((limit - FILE_RESERVE) / 2));
  progress(`idle tunnels: ${target.key}, ${count} held for ${options.settings.idleHoldMs / 1000} s (open-files limit ${limit})`);
  const result = await measureIdle(environment.origin, { proxy: target.proxy, pid: target.pid, metricsPort: target.metricsPort }, { count, holdMs: options.settings.idleHoldMs, concurrency: 64 });
  return { ...result, requested: options.settings.idleTunnels, openFilesLimit: limit };
}

/** Starts every target, holds idle tunnels through each proxy, measures all in interleaved rounds, then stops them. */
async function measureAll(environment: BenchEnvironment): Promise<TargetOutcome[]> {
  const plans = planTargets(options, environment.inputs);
  const missing = new Map<string, string>();
  const outcomes = new Map<string, Pick<TargetOutcome, 'extra' | 'idle' | 'profile'>>();
  const started: StartedTarget[] = [];
  let measured = new Map<string, TargetMeasurement>();
  let dnsQueries = new Map<string, number>();
  try {
    for (const { key, label, start } of plans) {
      if (typeof start === 'string') missing.set(key, start);
      else {
        try {
          progress(`starting ${label}`);
          started.push(await start());
        } catch (error) {
          progress(`${label} did not start: ${message(error)}`);
          missing.set(key, `failed to start: ${headline(error)}`);
        }
      }
    }
    // Idle tunnels first, on freshly started proxies: the memory they add is then theirs, not
    // what the load rounds left on the heap.
    for (const target of started) {
      if (abandoned) break;
      const idle = await idleFor(environment, target).catch((error: unknown) => ({ error: message(error) }));
      outcomes.set(target.key, { extra: {}, idle, profile: null });
    }
    const counter = environment.dns === null ? null : environment.dns.queries;
    ({ measured, dnsQueries } = await measureInterleaved(environment.origin, started, options.settings, progress, counter));
  } finally {
    for (const target of started) {
      const stoppedAtUs = monotonicMicros();
      const extra = { ...(await target.stop().catch(() => ({}))), ...(dnsQueries.has(target.key) ? { dnsQueries: dnsQueries.get(target.key) ?? 0 } : {}) };
      const profile = target.cpuProfileDir === null ? null : await summariseProfiles(target.cpuProfileDir, { fromUs: target.readyAtUs, toUs: stoppedAtUs }, REPO_ROOT);
      outcomes.set(target.key, { idle: null, ...outcomes.get(target.key), extra, profile });
    }
  }
  return plans.map(({ key, label }): TargetOutcome => {
    const measurement = measured.get(key);
    let why = missing.get(key) ?? null;
    if (measurement !== undefined && measurement.error !== null) {
      progress(`${label} failed: ${measurement.error}`);
      why = `failed: ${measurement.error.split('\n')[0] ?? ''}`;
    }
    const outcome = outcomes.get(key);
    return { key, label, results: measurement?.results ?? null, missing: why, extra: outcome?.extra ?? {}, idle: outcome?.idle ?? null, profile: outcome?.profile ?? null };
  });
}

function comparisons(outcomes: readonly TargetOutcome[]): Record<string, unknown> {
  const byKey = new Map(outcomes.map((outcome) => [outcome.key, outcome.results]));
  const direct = byKey.get('direct') ?? null;
  const squid = byKey.get('squid') ?? null;
  const result: Record<string, unknown> = {};
  for (const { key, results } of outcomes) {
    if (key === 'direct' || results === null || direct === null) continue;
    result[key] = {
      vs_direct: ratios(results, direct),
      vs_squid: key === 'squid' || squid === null ? null : ratios(results, squid),
      added_latency_ms: addedLatency(results, direct),
    };
  }
  return result;
}

async function blocklistBench(): Promise<unknown> {
  if (options.skipBlocklist) return { skipped: 'not run (--skip-blocklist)' };
  if (!(await access(BLOCKLIST_SCRIPT).then(() => true, () => false))) return { skipped: 'bench/blocklist.ts not present' };
  progress('blocklist (bench/blocklist.ts)...');
  return runJsonScript(BLOCKLIST_SCRIPT, [], 90_000).catch((error: unknown) => ({ failed: message(error) }));
}

async function main(): Promise<number> {
  const workDir = await mkdtemp(join(tmpdir(), 'sluice-bench-'));
  work = workDir;
  // squid drops root for an unprivileged user, which must still reach its own subdirectory.
  await chmod(workDir, 0o711);
  const squidBinary = await findSquid();
  try {
    progress(`profile set ${options.profileSet}${options.quick ? ' (quick)' : ''}`);
    const environment = await prepareEnvironment(options, workDir, squidBinary, progress);
    let outcomes: TargetOutcome[];
    try {
      outcomes = await measureAll(environment);
    } finally {
      await environment.stop();
    }
    // A stopped run must not overwrite the last complete result.
    if (abandoned) return 130;
    const blocklist = await blocklistBench();
    if (abandoned) return 130;
    process.stdout.write(`\n${renderTable(outcomes)}\n`);
    for (const { label, profile } of outcomes) if (profile !== null) process.stdout.write(`\n${renderProfile(label, profile)}\n`);
    const cpu = cpus();
    const report = {
      generated_at: new Date().toISOString(),
      profile_set: options.profileSet,
      sluice: await sourceRevision(REPO_ROOT),
      host: { node: process.version, platform: process.platform, arch: process.arch, cpus: cpu.length, cpu_model: cpu[0]?.model ?? 'unknown' },
      squid: squidBinary === null ? 'not installed' : { binary: squidBinary, version: await squidVersion(squidBinary), workers: options.squidWorkers },
      sluice_workers: options.sluiceWorkers,
      resolution: environment.resolution,
      settings: { ...options.settings, quick: options.quick, cpuProfile: options.cpuProfile },
      units: { rps: 'requests (or, under tunnels, whole new tunnels) per second', mbPerSecond: '10^6 bytes per second', ms: 'milliseconds', ratios: 'target / baseline' },
      targets: Object.fromEntries(
        outcomes.map((outcome) => [outcome.key, outcome.results === null ? { missing: outcome.missing } : { ...outcome.results, ...outcome.extra, idle: outcome.idle, cpuProfile: outcome.profile }]),
      ),
      comparisons: comparisons(outcomes),
      blocklist,
    };
    if (options.output !== null) {
      const output = resolve(options.output);
      await mkdir(dirname(output), { recursive: true });
      await writeFile(output, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`\nwrote ${output}\n`);
    }
    if (keepWork) process.stdout.write(`\nlogs, configs${options.cpuProfile ? ' and CPU profiles' : ''} kept in ${workDir}\n`);
    const failed = outcomes.filter((outcome) => outcome.results === null && outcome.missing?.startsWith('failed') === true);
    return failed.length === 0 ? 0 : 1;
  } finally {
    await stopAll();
    await removeWork();
  }
}

process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => abandon(130, signal));
const limit = setTimeout(() => abandon(1, `time limit of ${options.limitMs / 1000} s reached`), options.limitMs);
main().then(
  (code) => {
    clearTimeout(limit);
    process.exitCode = code;
  },
  (error: unknown) => {
    clearTimeout(limit);
    // Once abandoned, errors are the measurements being cut short, not news.
    if (abandoned) return;
    progress(message(error));
    process.exitCode = 1;
  },
);
