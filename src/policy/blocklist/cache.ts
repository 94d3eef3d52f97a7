// The per-source last-known-good copy on disk: the raw feed as last accepted plus a small JSON
// record of where it came from, its validators and its entry count. Written by rename only.
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlocklistFormat } from './formats.js';
import { BLOCKLIST_FORMATS } from './formats.js';

export interface CacheRecord {
  readonly url: string;
  readonly format: BlocklistFormat;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** when this copy was downloaded (ms since the epoch) */
  readonly fetchedAt: number;
  /** when the feed was last confirmed current: a download or a 304 */
  readonly checkedAt: number;
  readonly entries: number;
  readonly bytes: number;
}

export function listPath(cacheDir: string, source: string): string {
  return join(cacheDir, `${source}.list`);
}

function recordPath(cacheDir: string, source: string): string {
  return join(cacheDir, `${source}.json`);
}

/** A unique sibling path, so an interrupted write never leaves a half file under the real name. */
export function temporaryPath(path: string): string {
  return `${path}.${randomBytes(6).toString('hex')}.tmp`;
}

function isRecord(value: unknown): value is CacheRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const optionalString = (key: string): boolean => record[key] === null || typeof record[key] === 'string';
  return (
    typeof record.url === 'string' &&
    (BLOCKLIST_FORMATS as readonly unknown[]).includes(record.format) &&
    optionalString('etag') &&
    optionalString('lastModified') &&
    typeof record.fetchedAt === 'number' &&
    typeof record.checkedAt === 'number' &&
    typeof record.entries === 'number' &&
    typeof record.bytes === 'number'
  );
}

/** The record for a source, or null when there is none or it is unreadable (then the copy is refetched). */
export async function readRecord(cacheDir: string, source: string): Promise<CacheRecord | null> {
  try {
    const value: unknown = JSON.parse(await readFile(recordPath(cacheDir, source), 'utf8'));
    return isRecord(value) ? value : null;
  } catch {
    return null;
  }
}

export async function writeRecord(cacheDir: string, source: string, record: CacheRecord): Promise<void> {
  const path = recordPath(cacheDir, source);
  const temporary = temporaryPath(path);
  await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`);
  await rename(temporary, path);
}
