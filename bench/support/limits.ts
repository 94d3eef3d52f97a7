// What the measurements need from the OS: children started with the open-files limit raised as far
// as allowed, and a process tree's resident memory and CPU time read from /proc.
import { readdir, readFile } from 'node:fs/promises';

/** 10,000 tunnels hold two sockets each in the proxy, plus its own files. */
const WANTED_OPEN_FILES = 65_536;

/**
 * Runs `command` through sh with the soft and hard limit raised to WANTED_OPEN_FILES, or else to
 * the hard limit (raising the hard limit needs CAP_SYS_RESOURCE); `exec` keeps the pid the command's.
 */
export function withOpenFileLimit(command: string, args: readonly string[]): { command: string; args: string[] } {
  const script = `ulimit -n ${WANTED_OPEN_FILES} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;
  return { command: '/bin/sh', args: ['-c', script, 'sh', command, ...args] };
}

/** The soft RLIMIT_NOFILE a running process has. */
export async function openFileLimit(pid: number): Promise<number> {
  const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  if (soft === undefined) throw new Error(`no open-files limit in /proc/${pid}/limits`);
  return Number(soft);
}

async function childrenOf(pid: number): Promise<number[]> {
  // A child is listed under the thread that forked it, so every thread is read.
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => []);
  const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')));
  return lists.flatMap((list) => list.split(' ').filter((entry) => entry !== '').map(Number));
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
}

/** A process and all its descendants (squid's workers, a clustered Sluice's). */
async function processTree(pid: number): Promise<number[]> {
  const tree: number[] = [];
  const pending = [pid];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    tree.push(next);
    pending.push(...(await childrenOf(next)));
  }
  return tree;
}

/**
 * Resident bytes of a process tree; pages shared between its processes are counted once per
 * process, so a tree's sum can overstate.
 */
export async function treeRss(pid: number): Promise<{ bytes: number; processes: number }> {
  const tree = await processTree(pid);
  const sizes = await Promise.all(tree.map(rssOf));
  return { bytes: sizes.reduce((total, size) => total + size, 0), processes: tree.length };
}

/** The kernel's clock ticks per second (USER_HZ), which /proc/PID/stat counts CPU time in. */
const USER_HZ = 100;

/**
 * CPU time (user + system) a process has used so far, in milliseconds; 10 ms resolution, so read
 * it around hundreds of calls. Null where /proc is not there.
 */
export async function cpuMillis(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Fields after the command name, which is parenthesised and may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/** cpuMillis summed over a process tree (a process that exits in between takes its time with it). */
export async function treeCpuMillis(pid: number): Promise<number | null> {
  const times = await Promise.all((await processTree(pid)).map(cpuMillis));
  if (times.every((time) => time === null)) return null;
  return times.reduce<number>((total, time) => total + (time ?? 0), 0);
}
