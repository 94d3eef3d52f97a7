// Crash-safe state files: replacing a small one (tokens, approvals, modes) through a fsynced copy
// renamed over it, and opening an append-only log (audit chain, usage journal) for durable writes.
import { constants } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * Flags for an append-only log. With `durable`, O_DSYNC makes each write return only once its data,
 * and the file size that reaches it, are on disk: a write and an fdatasync in one trip to the
 * thread pool instead of two. `read` also allows reading it (the audit chain scans its tail).
 */
export function appendFlags(durable: boolean, access: 'read' | 'write-only'): number {
  const flags = (access === 'read' ? constants.O_RDWR : constants.O_WRONLY) | constants.O_APPEND | constants.O_CREAT;
  return durable ? flags | constants.O_DSYNC : flags;
}
