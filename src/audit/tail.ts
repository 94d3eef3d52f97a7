// Reads only the end of an audit file, backwards in chunks, to find its last complete lines and
// any unterminated fragment: reopening a multi-gigabyte log must not read it whole.
import type { FileHandle } from 'node:fs/promises';
import { SluiceError } from '../errors.js';
import { MAX_RECORD_BYTES } from './record.js';

const CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

export interface TailLine {
  /** file offset of the line's first byte */
  readonly start: number;
  /** the line without its '\n' */
  readonly bytes: Buffer;
}

export interface Tail {
  /** offset just past the last '\n' (0 when there is none); bytes from here to the end are unterminated */
  readonly fragmentStart: number;
  readonly fragment: Buffer;
  /** up to `wanted` complete lines before the fragment, oldest first */
  readonly lines: readonly TailLine[];
}

export async function readTail(handle: FileHandle, size: number, wanted: number): Promise<Tail> {
  // wanted lines plus the fragment: a torn write is at most one record, so this bounds the read.
  const limit = (wanted + 1) * MAX_RECORD_BYTES + CHUNK_BYTES;
  let bufferStart = size;
  const chunks: Buffer[] = [];
  let buffered = 0;
  let newlines = 0;
  while (bufferStart > 0 && newlines < wanted + 1) {
    if (buffered >= limit) {
      throw new SluiceError('AUDIT_UNAVAILABLE', `no record boundary in the last ${buffered} bytes of the audit file`);
    }
    const length = Math.min(CHUNK_BYTES, bufferStart);
    bufferStart -= length;
    const chunk = await readExactly(handle, bufferStart, length);
    chunks.unshift(chunk);
    buffered += length;
    newlines += countNewlines(chunk);
  }
  return splitTail(Buffer.concat(chunks), bufferStart, wanted);
}

function splitTail(buffer: Buffer, bufferStart: number, wanted: number): Tail {
  const lastNewline = buffer.lastIndexOf(NEWLINE);
  const fragmentOffset = lastNewline + 1;
  const lines: TailLine[] = [];
  let end = lastNewline;
  while (end >= 0 && lines.length < wanted) {
    const previous = end === 0 ? -1 : buffer.lastIndexOf(NEWLINE, end - 1);
    // A line whose start lies before the buffer is only known complete when the buffer reaches offset 0.
    if (previous < 0 && bufferStart > 0) break;
    lines.unshift({ start: bufferStart + previous + 1, bytes: buffer.subarray(previous + 1, end) });
    end = previous;
  }
  return { fragmentStart: bufferStart + fragmentOffset, fragment: buffer.subarray(fragmentOffset), lines };
}

function countNewlines(chunk: Buffer): number {
  let count = 0;
  for (let found = chunk.indexOf(NEWLINE); found >= 0; found = chunk.indexOf(NEWLINE, found + 1)) count += 1;
  return count;
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const target = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(target, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new SluiceError('AUDIT_UNAVAILABLE', 'audit file shrank while its tail was read');
    filled += bytesRead;
  }
  return target;
}
