// Streams a file as raw byte lines, reporting whether each ended with '\n', so the verifier can
// walk a multi-gigabyte audit log in constant memory and still see a torn final line.
import { createReadStream } from 'node:fs';

const NEWLINE = 0x0a;

export interface FileLine {
  /** 1-based line number */
  readonly number: number;
  /** the line without its '\n'; empty when `overlong` */
  readonly bytes: Buffer;
  readonly terminated: boolean;
  /** the line exceeded the caller's limit and was not buffered; the stream ends after it */
  readonly overlong: boolean;
}

export async function* readLines(file: string, maxLineBytes: number): AsyncGenerator<FileLine, void, undefined> {
  const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
  let parts: Buffer[] = [];
  let pending = 0;
  let number = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let from = 0;
    for (let newline = chunk.indexOf(NEWLINE, from); newline >= 0; newline = chunk.indexOf(NEWLINE, from)) {
      number += 1;
      if (pending + newline - from > maxLineBytes) {
        yield { number, bytes: Buffer.alloc(0), terminated: true, overlong: true };
        return;
      }
      parts.push(chunk.subarray(from, newline));
      yield { number, bytes: Buffer.concat(parts), terminated: true, overlong: false };
      parts = [];
      pending = 0;
      from = newline + 1;
    }
    if (from < chunk.length) {
      pending += chunk.length - from;
      if (pending > maxLineBytes) {
        yield { number: number + 1, bytes: Buffer.alloc(0), terminated: false, overlong: true };
        return;
      }
      parts.push(chunk.subarray(from));
    }
  }
  if (pending > 0) yield { number: number + 1, bytes: Buffer.concat(parts), terminated: false, overlong: false };
}
