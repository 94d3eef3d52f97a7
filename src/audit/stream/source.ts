// Reads durable audit records in seq order from a cursor, for the SIEM stream. One small interface,
// so a reader over rotated files can take the single-file reader's place.
import { open } from 'node:fs/promises';
import { OperatorError } from '../../errors.js';
import { checkLine, MAX_RECORD_BYTES, type AuditRecord, type ChainHead } from '../record.js';

export interface AuditSource {
  /**
   * Up to `limit` records after `from` (seq from.seq + 1 onwards, none beyond `until`), in order
   * and without gaps. Throws AUDIT_STREAM_CURSOR when the chain holds no record `from` names (the
   * file was replaced), AUDIT_STREAM_SOURCE when a record is missing or damaged.
   */
  read(from: ChainHead, until: number, limit: number): Promise<readonly AuditRecord[]>;
}

const CHUNK_BYTES = 256 * 1024;
const NEWLINE = 0x0a;

/** The single audit file the chain appends to; it remembers where the last read ended. */
export class FileAuditSource implements AuditSource {
  readonly #file: string;
  /** the byte offset just past record `seq`, so a stream that keeps up never rereads the file */
  #resume: { seq: number; offset: number } = { seq: 0, offset: 0 };

  constructor(file: string) {
    this.#file = file;
  }

  async read(from: ChainHead, until: number, limit: number): Promise<readonly AuditRecord[]> {
    const records: AuditRecord[] = [];
    if (until <= from.seq || limit <= 0) return records;
    // Resuming mid-file skips the check of `from`'s own hash, which the previous read already made.
    const resumed = this.#resume.seq === from.seq && from.seq > 0;
    let offset = resumed ? this.#resume.offset : 0;
    let cursorSeen = resumed || from.seq === 0;
    let expected = from.seq + 1;
    const handle = await open(this.#file, 'r');
    try {
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
          const record = this.#check(buffer.subarray(start, newline), offset);
          offset += newline + 1 - start;
          start = newline + 1;
          if (record.seq < from.seq) continue;
          if (record.seq === from.seq) {
            if (record.hash !== from.hash) throw cursorMismatch(this.#file, from);
            cursorSeen = true;
            continue;
          }
          if (!cursorSeen) throw cursorMismatch(this.#file, from);
          if (record.seq !== expected) {
            throw new OperatorError('AUDIT_STREAM_SOURCE', `${this.#file}: expected seq ${expected} next, found ${record.seq}`);
          }
          records.push(record);
          expected += 1;
          this.#resume = { seq: record.seq, offset };
          if (records.length >= limit || record.seq >= until) return records;
        }
        buffer = buffer.subarray(start);
        // A line longer than any record is not a record still being written: the file is damaged.
        if (buffer.length > MAX_RECORD_BYTES) throw new OperatorError('AUDIT_STREAM_SOURCE', `${this.#file}: no line end within ${MAX_RECORD_BYTES} bytes at offset ${offset}`);
        carry = Buffer.from(buffer);
      }
    } finally {
      await handle.close();
    }
    if (!cursorSeen) throw cursorMismatch(this.#file, from);
    if (expected <= until) throw new OperatorError('AUDIT_STREAM_SOURCE', `${this.#file} ends before seq ${expected}, which the chain reported durable`);
    return records;
  }

  #check(line: Buffer, offset: number): AuditRecord {
    const checked = checkLine(line);
    if (!checked.ok) throw new OperatorError('AUDIT_STREAM_SOURCE', `${this.#file}: record at offset ${offset} is ${checked.problem.kind}: ${checked.problem.detail}`);
    return checked.record;
  }
}

function cursorMismatch(file: string, from: ChainHead): OperatorError {
  return new OperatorError('AUDIT_STREAM_CURSOR', `${file} holds no record seq ${from.seq} with hash ${from.hash.slice(0, 12)}…; the chain was replaced since the stream cursor was saved`);
}
