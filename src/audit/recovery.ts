// Finds where an existing audit file's chain left off and sets aside a torn tail (a crash mid-write,
// a zero-filled block after power loss) so the chain can continue, without ever discarding evidence.
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { SluiceError } from '../errors.js';
import type { AuditRecoveryEntry } from './kinds.js';
import { checkLine, GENESIS_PREV, sha256Hex, type AuditRecord, type ChainHead } from './record.js';
import { readTail } from './tail.js';

export interface TornTail {
  /** file offset where the torn bytes start; the file is cut back to here */
  readonly start: number;
  readonly bytes: Buffer;
  readonly reason: string;
}

export interface ResumePoint {
  readonly head: ChainHead;
  readonly torn: TornTail | null;
}

export interface MovedTail {
  readonly tornBytes: number;
  readonly tornSha256: string;
  /** absolute or caller-relative path of the sibling file now holding the torn bytes */
  readonly tornFile: string;
  readonly reason: string;
}

/**
 * Reads the last two complete lines and the unterminated fragment. At most ONE damaged unit is
 * treated as torn (the fragment, or else the last line): a crash tears only the final write's end,
 * so damage further back is tampering or corruption and opening fails closed instead of cutting it.
 */
export async function findResumePoint(handle: FileHandle, file: string, size: number): Promise<ResumePoint> {
  if (size === 0) return { head: { seq: 0, hash: GENESIS_PREV }, torn: null };
  const tail = await readTail(handle, size, 2);
  const lines = [...tail.lines];
  let torn: TornTail | null = tail.fragment.length > 0
    ? { start: tail.fragmentStart, bytes: Buffer.from(tail.fragment), reason: 'last line has no trailing newline' }
    : null;
  let candidate = lines.pop();
  if (candidate === undefined) return { head: { seq: 0, hash: GENESIS_PREV }, torn };
  let check = checkLine(candidate.bytes);
  if (!check.ok && torn === null) {
    torn = {
      start: candidate.start,
      bytes: Buffer.concat([candidate.bytes, Buffer.from('\n')]),
      reason: `last line fails verification (${check.problem.kind}: ${check.problem.detail})`,
    };
    candidate = lines.pop();
    if (candidate === undefined) return { head: { seq: 0, hash: GENESIS_PREV }, torn };
    check = checkLine(candidate.bytes);
  }
  if (!check.ok) {
    throw new SluiceError(
      'AUDIT_UNAVAILABLE',
      `${file}: the record at byte ${candidate.start} does not verify (${check.problem.kind}: ${check.problem.detail}); ` +
        'refusing to append after damage that is not a torn tail; run `sluice audit verify`',
    );
  }
  return { head: headOf(check.record), torn };
}

function headOf(record: AuditRecord): ChainHead {
  return { seq: record.seq, hash: record.hash };
}

/**
 * Copies the torn bytes into `<file>.torn-<seq>-<ts>` (durably, created exclusively so an earlier
 * copy is never overwritten), then cuts them off the log. A crash between the two steps leaves a
 * second copy on the next open, never a loss.
 */
export async function moveTornTail(handle: FileHandle, file: string, torn: TornTail, seq: number, now: Date): Promise<MovedTail> {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  const tornFile = `${file}.torn-${seq}-${stamp}`;
  const copy = await open(tornFile, 'wx', 0o600);
  try {
    await writeAll(copy, torn.bytes);
    await copy.sync();
  } finally {
    await copy.close();
  }
  await handle.truncate(torn.start);
  await handle.sync();
  await syncDirectory(dirname(file));
  return { tornBytes: torn.bytes.length, tornSha256: sha256Hex(torn.bytes), tornFile, reason: torn.reason };
}

/** The record appended after a recovery; the sibling is named relative to the log's directory. */
export function recoveryFields(moved: MovedTail): AuditRecoveryEntry {
  return {
    kind: 'audit_recovery',
    torn_bytes: moved.tornBytes,
    torn_sha256: moved.tornSha256,
    torn_file: basename(moved.tornFile),
    reason: moved.reason,
  };
}

export async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await handle.write(data, written, data.length - written, null);
    written += bytesWritten;
  }
}

/** A new or truncated file's size and directory entry are durable only once the directory is synced. */
export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
