// Runs a test helper as an unprivileged user wherever the checkout lives: the child starts as root,
// so it can load its modules even from a 0700 folder, and drops to the user before it does anything.
import { spawn } from 'node:child_process';

export interface User {
  readonly uid: number;
  readonly gid: number;
}

/**
 * Runs `node script UID:GID ...args` and resolves to what it printed. The script hands its first
 * argument to `becomeUser` before opening a socket or a file, so what the test observes is done by
 * `user` alone, exactly as if the process had been started as that user.
 */
export function runAsUser(user: User, script: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, `${user.uid}:${user.gid}`, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}

/** Drops root for `UID:GID` for good: no supplementary groups, no saved uid, no capabilities. */
export function becomeUser(ids: string | undefined): void {
  const match = /^(\d+):(\d+)$/.exec(ids ?? '');
  if (match === null) throw new Error(`expected UID:GID as the first argument, got ${String(ids)}`);
  const uid = Number(match[1]);
  const gid = Number(match[2]);
  if (process.setgroups === undefined || process.setgid === undefined || process.setuid === undefined) throw new Error('this platform cannot change user');
  // Groups and gid first: once the uid is no longer root, they can no longer be changed.
  process.setgroups([]);
  process.setgid(gid);
  process.setuid(uid);
  const now = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.(), ...(process.getgroups?.() ?? [])];
  if (now.join() !== [uid, uid, gid, gid, gid].join()) throw new Error(`still running as ${now.join()}, wanted ${uid}:${gid}`);
}
