// Turns the measured figures into the printed table: one column per target, absolute figures
// first, then the ratios against the direct connection and against squid from the same run.
import { addedLatency, ratios, type Ratios } from '../proxy-throughput.js';
import type { ProfileSummary } from './cpu-profile.js';
import { LAG_RESOLUTION_MS, type IdleResult } from './idle-tunnels.js';
import type { TaskResults } from './tasks.js';

export type IdleOutcome = (IdleResult & { readonly requested: number; readonly openFilesLimit: number }) | { readonly error: string };

export interface TargetOutcome {
  readonly key: string;
  readonly label: string;
  readonly results: TaskResults | null;
  /** why there are no results: "squid not installed", or the error that stopped this target */
  readonly missing: string | null;
  readonly extra: Readonly<Record<string, number>>;
  /** null for the direct baseline, or when idle tunnels were not measured */
  readonly idle: IdleOutcome | null;
  readonly profile: ProfileSummary | null;
}

type Cell = (target: TaskResults) => number | null;

function fixed(value: number | null, digits: number): string {
  return value === null || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

type IdleCell = (idle: Extract<IdleOutcome, { attempted: number }>) => number | null;

const IDLE_ROWS: ReadonlyArray<[string, IdleCell, number]> = [
  ['idle tunnels held', (idle) => idle.opened, 0],
  ['  still open at the end', (idle) => idle.stillOpenAtEnd, 0],
  ['  RSS before, MB', (idle) => idle.rssBeforeMb, 0],
  ['  RSS while held, MB', (idle) => idle.rssHeldMb, 0],
  ['  RSS per tunnel, KB', (idle) => idle.rssPerTunnelKb, 1],
  ['  event-loop lag p99 while held, ms', (idle) => idle.eventLoop?.heldP99Ms ?? null, 1],
  ['    the same in an idle process (control), ms', (idle) => idle.controlLagP99Ms, 1],
  [`    beyond the ${LAG_RESOLUTION_MS} ms sampling, ms`, (idle) => (idle.eventLoop === null ? null : idle.eventLoop.heldP99Ms - LAG_RESOLUTION_MS), 1],
  ['  event-loop lag p99 while opening, ms', (idle) => idle.eventLoop?.openingP99Ms ?? null, 1],
];

function idleCell(idle: IdleOutcome | null, cell: IdleCell, digits: number): string {
  return idle === null || 'error' in idle ? '-' : fixed(cell(idle), digits);
}

export function renderTable(outcomes: readonly TargetOutcome[]): string {
  const direct = outcomes.find((outcome) => outcome.key === 'direct')?.results ?? null;
  const squid = outcomes.find((outcome) => outcome.key === 'squid')?.results ?? null;
  const versus = (baseline: TaskResults | null, pick: (ratio: Ratios) => number): Cell => (target) =>
    baseline === null || target === baseline ? null : pick(ratios(target, baseline));
  const added = (key: 'p50Ms' | 'p99Ms'): Cell => (target) => (direct === null || target === direct ? null : addedLatency(target, direct)[key]);
  const rows: Array<[string, Cell, number]> = [
    ['keep-alive GET, req/s', (target) => target.rps.rps, 0],
    ['  x direct', versus(direct, (ratio) => ratio.rps), 2],
    ['  x squid', versus(squid, (ratio) => ratio.rps), 2],
    ['  per-request p50, ms', (target) => target.rps.p50Ms, 2],
    ['  per-request p99, ms', (target) => target.rps.p99Ms, 2],
    ['  proxy CPU per request, ms', (target) => target.rps.proxyCpuMs, 3],
    ['tunnel download, MB/s', (target) => target.download.mbPerSecond, 0],
    ['  x direct', versus(direct, (ratio) => ratio.downloadMbPerSecond), 2],
    ['  x squid', versus(squid, (ratio) => ratio.downloadMbPerSecond), 2],
    ['tunnel upload, MB/s', (target) => target.upload.mbPerSecond, 0],
    ['  x direct', versus(direct, (ratio) => ratio.uploadMbPerSecond), 2],
    ['  x squid', versus(squid, (ratio) => ratio.uploadMbPerSecond), 2],
    ['new CONNECT+GET p50, ms', (target) => target.latency.p50Ms, 2],
    ['  added over direct, ms', added('p50Ms'), 2],
    ['  x squid', versus(squid, (ratio) => ratio.latencyP50), 2],
    ['new CONNECT+GET p99, ms', (target) => target.latency.p99Ms, 2],
    ['  added over direct, ms', added('p99Ms'), 2],
    ['  x squid', versus(squid, (ratio) => ratio.latencyP99), 2],
    ['new tunnels/s', (target) => target.tunnels.rps, 0],
    ['  x direct', versus(direct, (ratio) => ratio.newTunnelsPerSecond), 2],
    ['  x squid', versus(squid, (ratio) => ratio.newTunnelsPerSecond), 2],
    ['  proxy CPU per tunnel, ms', (target) => target.tunnels.proxyCpuMs, 3],
  ];
  const header = ['', ...outcomes.map((outcome) => outcome.label)];
  const lines: string[][] = [header];
  for (const [label, cell, digits] of rows) {
    lines.push([label, ...outcomes.map((outcome) => (outcome.results === null ? '-' : fixed(cell(outcome.results), digits)))]);
  }
  for (const [label, cell, digits] of IDLE_ROWS) lines.push([label, ...outcomes.map((outcome) => idleCell(outcome.idle, cell, digits))]);
  const extraKeys = [...new Set(outcomes.flatMap((outcome) => Object.keys(outcome.extra)))];
  for (const key of extraKeys) lines.push([key, ...outcomes.map((outcome) => fixed(outcome.extra[key] ?? null, 0))]);
  const widths = header.map((_, column) => Math.max(...lines.map((line) => (line[column] ?? '').length)));
  const text = lines.map((line) => line.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  const notes = outcomes.filter((outcome) => outcome.missing !== null).map((outcome) => `${outcome.label}: ${outcome.missing}`);
  for (const { label, idle } of outcomes) {
    if (idle !== null && 'error' in idle) notes.push(`${label}: idle tunnels failed: ${idle.error}`);
    else if (idle !== null && idle.firstError !== null) notes.push(`${label}: ${idle.failed} idle tunnels failed to open, the first with: ${idle.firstError}`);
  }
  return [...text, ...notes].join('\n');
}
