// Byte-level HTTP/1.1 over a plain socket or a CONNECT tunnel (RFC 9110 §9.3.6), so the tunnel
// figures measure the proxy's relay and not an HTTP client library's buffering.
import { connect, type LookupFunction, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { originLookup } from './origin-lookup.js';
import type { LatencyRound, OriginAddress, TransferRound } from './tasks.js';

const HEAD_END = Buffer.from('\r\n\r\n');
const UPLOAD_CHUNK = Buffer.alloc(1 << 20, 0x62);

interface Head {
  readonly status: number;
  readonly contentLength: number;
  /** bytes after the head that arrived with it */
  readonly rest: Buffer;
}

/** Reads up to the end of a response head; the socket is paused again before it returns. */
function readHead(socket: Socket, initial: Buffer = Buffer.alloc(0)): Promise<Head> {
  return new Promise((resolve, reject) => {
    let buffered = initial;
    const done = (error: Error | null, head?: Head): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      socket.pause();
      if (head !== undefined) resolve(head);
      else reject(error ?? new Error('no response head'));
    };
    const parse = (): boolean => {
      const end = buffered.indexOf(HEAD_END);
      if (end < 0) return false;
      const text = buffered.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 'NaN');
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1];
      done(null, { status, contentLength: length === undefined ? -1 : Number(length), rest: buffered.subarray(end + HEAD_END.length) });
      return true;
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      parse();
    };
    const onError = (error: Error): void => done(error);
    const onEnd = (): void => done(new Error(`connection closed before the response head (${buffered.length} bytes)`));
    if (parse()) return;
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.resume();
  });
}

/** Counts a Content-Length body to its end; keeps it only when it is a few bytes (the sink's count). */
function drainBody(socket: Socket, head: Head): Promise<{ received: number; text: string }> {
  return new Promise((resolve, reject) => {
    if (head.contentLength < 0) {
      reject(new Error('response without Content-Length'));
      return;
    }
    const keep = head.contentLength <= 1024;
    const kept: Buffer[] = keep ? [head.rest] : [];
    let received = head.rest.length;
    const finish = (error: Error | null): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      if (error === null) resolve({ received, text: Buffer.concat(kept).toString('latin1') });
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (keep) kept.push(chunk);
      if (received >= head.contentLength) finish(null);
    };
    const onError = (error: Error): void => finish(error);
    const onEnd = (): void => finish(new Error(`body cut short at ${received} of ${head.contentLength} bytes`));
    if (received >= head.contentLength) {
      finish(null);
      return;
    }
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.resume();
  });
}

function dial(target: { host: string; port: number; lookup?: LookupFunction }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ ...target, noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

/** The way to the origin, directly or through a proxy's CONNECT tunnel, and the requests sent along it. */
export class OriginPath {
  private readonly authority: string;
  private readonly lookup: LookupFunction | undefined;

  constructor(
    private readonly origin: OriginAddress,
    private readonly proxy: number | null,
  ) {
    this.authority = `${origin.host}:${origin.port}`;
    this.lookup = proxy === null ? originLookup(origin) : undefined;
  }

  /** A new connection that reaches the origin; `rest` is what arrived after the CONNECT answer. */
  async open(): Promise<{ socket: Socket; rest: Buffer }> {
    if (this.proxy === null) {
      const target = { host: this.origin.host, port: this.origin.port, ...(this.lookup === undefined ? {} : { lookup: this.lookup }) };
      return { socket: await dial(target), rest: Buffer.alloc(0) };
    }
    const socket = await dial({ host: '127.0.0.1', port: this.proxy });
    socket.write(`CONNECT ${this.authority} HTTP/1.1\r\nHost: ${this.authority}\r\n\r\n`);
    const head = await readHead(socket);
    if (head.status !== 200) {
      socket.destroy();
      throw new Error(`CONNECT answered ${head.status}`);
    }
    return { socket, rest: head.rest };
  }

  /** A request head; `Connection: close` unless the connection is to be kept. */
  head(method: string, path: string, extra = '', close = true): string {
    return `${method} ${path} HTTP/1.1\r\nHost: ${this.authority}\r\n${extra}${close ? 'Connection: close\r\n' : ''}\r\n`;
  }

  /** `GET /small` on an open connection, read to the end of the body. */
  async getSmall(socket: Socket, rest: Buffer, close: boolean): Promise<void> {
    socket.write(this.head('GET', '/small', '', close));
    const head = await readHead(socket, rest);
    if (head.status !== 200) throw new Error(`small GET answered ${head.status}`);
    await drainBody(socket, head);
  }
}

function speed(bytes: number, started: number): TransferRound {
  return { mbPerSecond: bytes / 1e6 / ((performance.now() - started) / 1000) };
}

export async function download(path: OriginPath, bytes: number): Promise<TransferRound> {
  const started = performance.now();
  const { socket, rest } = await path.open();
  try {
    socket.write(path.head('GET', `/bytes?n=${bytes}`));
    const head = await readHead(socket, rest);
    if (head.status !== 200 || head.contentLength !== bytes) throw new Error(`download answered ${head.status} with ${head.contentLength} bytes`);
    const { received } = await drainBody(socket, head);
    return speed(received, started);
  } finally {
    socket.destroy();
  }
}

function writeWithBackpressure(socket: Socket, chunk: Buffer): Promise<void> {
  if (socket.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      socket.off('error', onError);
      resolve();
    };
    const onError = (error: Error): void => {
      socket.off('drain', onDrain);
      reject(error);
    };
    socket.once('drain', onDrain);
    socket.once('error', onError);
  });
}

export async function upload(path: OriginPath, bytes: number): Promise<TransferRound> {
  const started = performance.now();
  const { socket, rest } = await path.open();
  try {
    socket.write(path.head('POST', '/sink', `Content-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n`));
    for (let sent = 0; sent < bytes; sent += UPLOAD_CHUNK.length) {
      const size = Math.min(UPLOAD_CHUNK.length, bytes - sent);
      await writeWithBackpressure(socket, size === UPLOAD_CHUNK.length ? UPLOAD_CHUNK : UPLOAD_CHUNK.subarray(0, size));
    }
    const head = await readHead(socket, rest);
    const { text } = await drainBody(socket, head);
    if (head.status !== 200 || Number(text.trim()) !== bytes) throw new Error(`upload answered ${head.status}, origin counted ${text.trim()} of ${bytes} bytes`);
    return speed(bytes, started);
  } finally {
    socket.destroy();
  }
}

/** One fresh connection, tunnel (when proxied) and small GET, then close; timed from dial to the last body byte. */
export async function oneExchange(path: OriginPath): Promise<number> {
  const started = performance.now();
  const { socket, rest } = await path.open();
  try {
    await path.getSmall(socket, rest, true);
    return performance.now() - started;
  } finally {
    socket.destroy();
  }
}

export async function latency(path: OriginPath, samples: number, warmup: number): Promise<LatencyRound> {
  for (let i = 0; i < warmup; i++) await oneExchange(path);
  const samplesMs: number[] = [];
  for (let i = 0; i < samples; i++) samplesMs.push(await oneExchange(path));
  return { samplesMs };
}
