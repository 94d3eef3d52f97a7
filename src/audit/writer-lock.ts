// One writer per audit file: a lock file beside it holding the writer's pid. Two processes
// appending to one chain would interleave sequence numbers and break it for good.
import { open, readFile, unlink } from 'node:fs/promises';
import { SluiceError } from '../errors.js';

/** Locks this process holds: a lock file naming our own pid is only ours if it is in here (a
 *  container restarts Sluice as pid 1 every time, so a crashed pid-1 writer left the same pid). */
const held = new Set<string>();

export interface WriterLock {
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user; still a live writer.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `${file}.lock`, replacing a lock left by a process that no longer runs (a crash).
 * Throws AUDIT_UNAVAILABLE while another live process holds it.
 */
export async function lockWriter(file: string): Promise<WriterLock> {
  const path = `${file}.lock`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      held.add(path);
      return {
        release: async () => {
          held.delete(path);
          await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new SluiceError('AUDIT_UNAVAILABLE', `cannot lock ${path}`, { cause: error });
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    const live = holder === process.pid ? held.has(path) : Number.isInteger(holder) && holder > 0 && isAlive(holder);
    if (live) {
      throw new SluiceError('AUDIT_UNAVAILABLE', `${file} is being written by another process (pid ${holder}); one audit chain has one writer`);
    }
    await unlink(path).catch(() => undefined);
  }
  throw new SluiceError('AUDIT_UNAVAILABLE', `cannot take ${path}`);
}
