// The one way to read an audit chain back: its files (rotated ones, then the active one) in chain
// order, and their records in order from a given seq. Verify, export and streaming build on it.
import { open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SluiceError } from '../errors.js';
import { readLines } from './lines.js';
import { checkLine, MAX_RECORD_BYTES, type AuditRecord } from './record.js';
import { readTail } from './tail.js';

export interface ChainFile {
  readonly path: string;
  /** seq of its first record; null for an empty file */
  readonly firstSeq: number | null;
  readonly bytes: number;
  /** last modification: the time of its last record, for retention by age */
  readonly modified: Date;
}

export interface ReadRecord {
  readonly record: AuditRecord;
  readonly file: string;
  /** 1-based line number within `file` */
  readonly line: number;
}

const ROTATED_SUFFIX = /^-(\d{12})\.jsonl$/;

/** Where the active file `audit.jsonl` goes when it rotates: `audit-000000001234.jsonl`, named for its first seq. */
export function rotatedName(activeFile: string, firstSeq: number): string {
  return join(dirname(activeFile), `${stemOf(activeFile)}-${String(firstSeq).padStart(12, '0')}.jsonl`);
}

function stemOf(activeFile: string): string {
  return basename(activeFile).replace(/\.jsonl$/, '');
}

/** The files of the chain whose active file is `activeFile`: its rotated files by first seq, then itself. */
export async function activeChainFiles(activeFile: string): Promise<ChainFile[]> {
  const stem = stemOf(activeFile);
  const names = await readdir(dirname(activeFile));
  const rotated = names.filter((name) => name.startsWith(stem) && ROTATED_SUFFIX.test(name.slice(stem.length)));
  const files = await Promise.all(rotated.map((name) => describe(join(dirname(activeFile), name))));
  const active = await describe(activeFile).catch(async (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A torn first write is the writer's to recover (AuditChain.open); until then it has no first seq.
    const info = await stat(activeFile);
    return { path: activeFile, firstSeq: null, bytes: info.size, modified: info.mtime };
  });
  return [...sortByFirstSeq(files), ...(active === null ? [] : [active])];
}

/**
 * Every `*.jsonl` file in `dir`, ordered by the seq of its first record (how a directory of
 * rotated files is verified or exported without knowing the writer's naming); empty files last.
 */
export async function chainFilesIn(dir: string): Promise<ChainFile[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.jsonl'));
  return sortByFirstSeq(await Promise.all(names.map((name) => describe(join(dir, name)))));
}

function sortByFirstSeq(files: ChainFile[]): ChainFile[] {
  return files.sort((a, b) => (a.firstSeq ?? Number.MAX_SAFE_INTEGER) - (b.firstSeq ?? Number.MAX_SAFE_INTEGER) || a.path.localeCompare(b.path));
}

async function describe(path: string): Promise<ChainFile> {
  const info = await stat(path);
  const first = await firstRecord(path);
  return { path, firstSeq: first?.seq ?? null, bytes: info.size, modified: info.mtime };
}

/** The first record of `path`, or null when it is empty; an unreadable first line is an error. */
export async function firstRecord(path: string): Promise<AuditRecord | null> {
  for await (const line of readLines(path, MAX_RECORD_BYTES)) {
    const check = line.overlong || !line.terminated ? null : checkLine(line.bytes);
    if (check === null || !check.ok) throw new SluiceError('AUDIT_UNAVAILABLE', `${path}:1: not an audit record; run \`sluice audit verify\``);
    return check.record;
  }
  return null;
}

/** The last complete record of `path`, read from its end; null when it has none. */
export async function lastRecord(path: string): Promise<AuditRecord | null> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const [line] = size === 0 ? [] : (await readTail(handle, size, 1)).lines;
    if (line === undefined) return null;
    const check = checkLine(line.bytes);
    if (!check.ok) throw new SluiceError('AUDIT_UNAVAILABLE', `${path}: the last record does not verify (${check.problem.kind}); run \`sluice audit verify\``);
    return check.record;
  } finally {
    await handle.close();
  }
}

/**
 * The records of `files` in order, starting with the first whose seq is at least `fromSeq`; a
 * file that ends before `fromSeq` (the next one starts at or below it) is not read at all. Each
 * line is checked on its own (hash, canonical form); a damaged one throws, naming file and line.
 * Linkage between records is `verifyChain`'s job.
 */
export async function* readRecords(files: readonly ChainFile[], fromSeq = 1): AsyncGenerator<ReadRecord, void, undefined> {
  for (let index = 0; index < files.length; index += 1) {
    const file = files[index];
    const next = files[index + 1];
    if (file === undefined) continue;
    if ((next?.firstSeq ?? Number.POSITIVE_INFINITY) <= fromSeq) continue;
    for await (const read of recordsOf(file.path)) {
      if (read.record.seq >= fromSeq) yield read;
    }
  }
}

async function* recordsOf(path: string): AsyncGenerator<ReadRecord, void, undefined> {
  for await (const line of readLines(path, MAX_RECORD_BYTES)) {
    // A torn final line is a crash the writer will move aside at its next start: not a record yet.
    if (!line.terminated && !line.overlong) return;
    const check = line.overlong ? null : checkLine(line.bytes);
    if (check === null || !check.ok) {
      const why = check === null ? 'line too long' : `${check.problem.kind}: ${check.problem.detail}`;
      throw new SluiceError('AUDIT_UNAVAILABLE', `${path}:${line.number}: ${why}; run \`sluice audit verify\``);
    }
    yield { record: check.record, file: path, line: line.number };
  }
}
