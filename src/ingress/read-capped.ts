// Reads a request body into memory up to a cap: only inference calls are read whole, so their
// model and output bound can be metered before anything is sent upstream.
import type { Readable } from 'node:stream';

/** The whole body, or null once it passes `maxBytes` (the rest is left unread). */
export async function readCapped(body: Readable, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    const bytes = chunk as Buffer;
    length += bytes.length;
    if (length > maxBytes) return null;
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, length);
}
