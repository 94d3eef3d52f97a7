// Reads durable audit records in seq order from a cursor, for the SIEM stream, across the chain's
// rotated files and its active one, resuming at the byte where the last read ended.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { OperatorError } from '../../errors.js';
import { activeChainFiles, type ChainFile } from '../reader.js';
import { checkLine, MAX_RECORD_BYTES, type AuditRecord, type ChainHead } from '../record.js';

export interface AuditSource {
  /**
   * Up to `limit` records after `from` (seq from.seq + 1 onwards, none beyond `until`), in order
   * and without gaps; from seq 0, the chain's first record still on disk. Throws
   * AUDIT_STREAM_CURSOR when the chain holds no record `from` names (the chain was replaced, or
   * the record was deleted), AUDIT_STREAM_SOURCE when a record is missing or damaged.
   */
  read(from: ChainHead, until: number, limit: number): Promise<readonly AuditRecord[]>;
}

const CHUNK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

/** Where the last read ended: just past record `seq`, at `offset` in the file whose first record is `firstSeq`. */
interface Resume {
  readonly seq: number;
  readonly firstSeq: number;
  readonly offset: number;
}

/** A read either ends with records or finds the file list out of date (rotation, retention). */
type Attempt = { readonly kind: 'records'; readonly records: AuditRecord[] } | { readonly kind: 'stale'; readonly error: OperatorError };

/** What one read is looking for, and what it has found so far. */
interface Scan {
  readonly from: ChainHead;
  readonly until: number;
  readonly limit: number;
  readonly records: AuditRecord[];
  /** the seq the next record must carry; null before the first record of a read from seq 0 */
  expected: number | null;
  cursorSeen: boolean;
}

/**
 * The chain of the active file `audit.jsonl` and its rotated `audit-<firstSeq>.jsonl` files. The
 * file list is cached and listed again only when a read cannot go on with it: the seq it needs is
 * in no listed file, or the active file was renamed away (rotated) since the list was made.
 */
export class ChainAuditSource implements AuditSource {
  readonly #activeFile: string;
  #files: readonly ChainFile[] | null = null;
  /** the active file's inode when the list was made: a different one means it was rotated since */
  #activeIno: number | null = null;
  #resume: Resume | null = null;

  constructor(activeFile: string) {
    this.#activeFile = activeFile;
  }

  async read(from: ChainHead, until: number, limit: number): Promise<readonly AuditRecord[]> {
    if (until <= from.seq || limit <= 0) return [];
    try {
      let listedNow = this.#files === null;
      let files = this.#files ?? (await this.#list());
      for (;;) {
        const attempt = await this.#attempt(files, { from, until, limit, records: [], expected: from.seq === 0 ? null : from.seq + 1, cursorSeen: from.seq === 0 });
        if (attempt.kind === 'records') return attempt.records;
        if (listedNow) throw attempt.error;
        files = await this.#list();
        listedNow = true;
      }
    } catch (error) {
      // Whatever went wrong, the next read starts from a fresh list and a scan for the cursor.
      this.#files = null;
      this.#resume = null;
      throw error;
    }
  }

  async #list(): Promise<readonly ChainFile[]> {
    // The inode first: a rotation between the two shows as a changed inode at the next open.
    this.#activeIno = await stat(this.#activeFile).then(
      (info) => info.ino,
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw error;
      },
    );
    this.#files = await activeChainFiles(this.#activeFile);
    return this.#files;
  }

  async #attempt(files: readonly ChainFile[], scan: Scan): Promise<Attempt> {
    const { from } = scan;
    let offset = 0;
    const resume = this.#resume;
    const resumed = resume !== null && resume.seq === from.seq && from.seq > 0 ? files.findIndex((file) => file.firstSeq === resume.firstSeq) : -1;
    let index: number;
    if (resume !== null && resumed >= 0) {
      // Resuming skips the check of `from`'s own hash, which the read that ended there already made.
      index = resumed;
      offset = resume.offset;
      scan.cursorSeen = true;
    } else if (from.seq === 0) {
      index = files.findIndex((file) => file.firstSeq !== null);
    } else {
      // The file holding the record after `from` (whose `prev` proves the cursor), so a cursor at
      // the last record of a file, even one retention has deleted since, needs no scan of it.
      index = files.findLastIndex((file) => file.firstSeq !== null && file.firstSeq <= from.seq + 1);
    }
    if (index < 0) return { kind: 'stale', error: from.seq === 0 ? this.#missing(scan) : cursorMismatch(this.#activeFile, from) };
    for (;;) {
      const file = files[index];
      if (file === undefined) return { kind: 'stale', error: this.#missing(scan) };
      const ended = await this.#scanFile(file, offset, index === files.length - 1 && file.path === this.#activeFile, scan);
      if (ended === 'done') return { kind: 'records', records: scan.records };
      if (ended !== 'file_end') return stale(scan, ended);
      if (!scan.cursorSeen) return { kind: 'stale', error: cursorMismatch(file.path, from) };
      const next = files[index + 1];
      // The next file's first record chains to this one's last: the read goes on there.
      if (next === undefined || next.firstSeq === null) return stale(scan, this.#missing(scan));
      if (next.firstSeq !== scan.expected) {
        return stale(scan, new OperatorError('AUDIT_STREAM_SOURCE', `${file.path} ends before seq ${scan.expected ?? '?'} but ${next.path} starts at seq ${next.firstSeq}; records in between are missing`));
      }
      index += 1;
      offset = 0;
    }
  }

  /**
   * Reads `file` from `offset`, adding the records the scan wants. 'done' when the batch is full or
   * reaches `until`; 'file_end' when the file ends first; an error when a record is damaged, out of
   * order, or the active file is no longer the one listed.
   */
  async #scanFile(file: ChainFile, offset: number, active: boolean, scan: Scan): Promise<'done' | 'file_end' | OperatorError> {
    const handle = await open(file.path, 'r');
    try {
      if (active && (await handle.stat()).ino !== this.#activeIno) return new OperatorError('AUDIT_STREAM_SOURCE', `${file.path} was rotated while being read`);
      return await this.#scanHandle(handle, file, offset, scan);
    } finally {
      await handle.close();
    }
  }

  async #scanHandle(handle: FileHandle, file: ChainFile, offset: number, scan: Scan): Promise<'done' | 'file_end'> {
    const { from, until, limit, records } = scan;
    let carry = Buffer.alloc(0);
    let position = offset;
    for (;;) {
      const chunk = Buffer.alloc(CHUNK_BYTES);
      const { bytesRead } = await handle.read(chunk, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      let buffer = carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      let start = 0;
      for (let newline = buffer.indexOf(NEWLINE); newline >= 0; newline = buffer.indexOf(NEWLINE, start)) {
        const record = checked(file.path, buffer.subarray(start, newline), offset);
        offset += newline + 1 - start;
        start = newline + 1;
        if (record.seq < from.seq) continue;
        if (record.seq === from.seq && from.seq > 0) {
          if (record.hash !== from.hash) throw cursorMismatch(file.path, from);
          scan.cursorSeen = true;
          continue;
        }
        if (!scan.cursorSeen && record.seq === from.seq + 1 && record.prev === from.hash) scan.cursorSeen = true;
        if (!scan.cursorSeen) throw cursorMismatch(file.path, from);
        scan.expected ??= record.seq;
        if (record.seq !== scan.expected) throw new OperatorError('AUDIT_STREAM_SOURCE', `${file.path}: expected seq ${scan.expected} next, found ${record.seq}`);
        records.push(record);
        scan.expected += 1;
        this.#resume = { seq: record.seq, firstSeq: file.firstSeq ?? record.seq, offset };
        if (records.length >= limit || record.seq >= until) return 'done';
      }
      buffer = buffer.subarray(start);
      // A line longer than any record is not a record still being written: the file is damaged.
      if (buffer.length > MAX_RECORD_BYTES) throw new OperatorError('AUDIT_STREAM_SOURCE', `${file.path}: no line end within ${MAX_RECORD_BYTES} bytes at offset ${offset}`);
      carry = Buffer.from(buffer);
    }
    return 'file_end';
  }

  #missing(scan: Scan): OperatorError {
    return new OperatorError('AUDIT_STREAM_SOURCE', `the audit chain at ${this.#activeFile} ends before seq ${scan.expected ?? scan.from.seq + 1}, which it reported durable`);
  }
}

/** What was found so far is delivered; the next read meets the problem again, or a fresh list solves it. */
function stale(scan: Scan, error: OperatorError): Attempt {
  return scan.records.length > 0 ? { kind: 'records', records: scan.records } : { kind: 'stale', error };
}

function checked(file: string, line: Buffer, offset: number): AuditRecord {
  const result = checkLine(line);
  if (!result.ok) throw new OperatorError('AUDIT_STREAM_SOURCE', `${file}: record at offset ${offset} is ${result.problem.kind}: ${result.problem.detail}`);
  return result.record;
}

function cursorMismatch(file: string, from: ChainHead): OperatorError {
  return new OperatorError('AUDIT_STREAM_CURSOR', `${file} holds no record seq ${from.seq} with hash ${from.hash.slice(0, 12)}…; the chain was replaced or that record deleted since the stream cursor was saved`);
}
