// Reads the .cpuprofile files `node --cpu-prof` wrote for a target and sums self time per
// function, so the effect of a change can be read in a terminal without a profiler GUI.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: CallFrame }[];
  /** microseconds on the monotonic clock, the same one process.hrtime reads */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTime {
  readonly name: string;
  /** where it is: a path relative to the repository, node:internal, or '' for V8's own entries */
  readonly location: string;
  readonly selfMs: number;
  /** of the busy (not idle) time in the window */
  readonly share: number;
}

export interface ProfileSummary {
  readonly files: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly top: readonly SelfTime[];
}

/** Microseconds since boot on the clock V8 stamps its samples with. */
export function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Functions are grouped by name and script; anonymous ones also by line, or every callback of a
 * file would fold into one row.
 */
function groupOf(frame: CallFrame, repoUrl: string): { key: string; name: string; location: string } {
  const line = frame.lineNumber + 1;
  const script = frame.url.startsWith(repoUrl) ? frame.url.slice(repoUrl.length) : frame.url;
  const name = frame.functionName === '' ? `(anonymous :${line})` : frame.functionName;
  const location = script === '' ? '' : `${script}:${line}`;
  return { key: `${name}\u0000${script}`, name, location };
}

/** Adds each sample's duration (until the next sample) to its function, within [fromUs, toUs]. */
function accumulate(profile: CpuProfile, window: { fromUs: number; toUs: number }, repoUrl: string, into: Map<string, { name: string; location: string; us: number }>): void {
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  let at = profile.startTime;
  const stamps = profile.timeDeltas.map((delta) => (at += delta));
  stamps.forEach((stamp, index) => {
    if (stamp < window.fromUs || stamp > window.toUs) return;
    const frame = frames.get(profile.samples[index] ?? -1);
    if (frame === undefined) return;
    const duration = (stamps[index + 1] ?? profile.endTime) - stamp;
    const group = groupOf(frame, repoUrl);
    const entry = into.get(group.key);
    if (entry === undefined) into.set(group.key, { name: group.name, location: group.location, us: duration });
    else entry.us += duration;
  });
}

export async function summariseProfiles(dir: string, window: { fromUs: number; toUs: number }, repoRoot: string, limit = 25): Promise<ProfileSummary> {
  const files = (await readdir(dir).catch(() => [])).filter((file) => file.endsWith('.cpuprofile'));
  const repoUrl = `${pathToFileURL(repoRoot).href}/`;
  const groups = new Map<string, { name: string; location: string; us: number }>();
  for (const file of files) accumulate(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, window, repoUrl, groups);
  const idleUs = [...groups.values()].filter((group) => group.name === '(idle)').reduce((sum, group) => sum + group.us, 0);
  const busy = [...groups.values()].filter((group) => group.name !== '(idle)').sort((a, b) => b.us - a.us);
  const busyUs = busy.reduce((sum, group) => sum + group.us, 0);
  return {
    files: files.length,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    top: busy.slice(0, limit).map((group) => ({ name: group.name, location: group.location, selfMs: group.us / 1000, share: busyUs === 0 ? 0 : group.us / busyUs })),
  };
}

export function renderProfile(label: string, summary: ProfileSummary): string {
  const head = `${label}: ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle (${summary.files} profile file${summary.files === 1 ? '' : 's'}); top ${summary.top.length} by self time`;
  const rows = summary.top.map((entry) => `${entry.selfMs.toFixed(1).padStart(9)} ms ${(entry.share * 100).toFixed(1).padStart(5)} %  ${entry.name}  ${entry.location}`);
  return [head, ...rows].join('\n');
}
