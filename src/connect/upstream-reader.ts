// Reads a dialled upstream socket through net.Socket `onread`: large reads handed straight to the
// relay's client socket, bypassing the stream machinery that `pipe()` runs for every chunk.
import type { OnReadOpts, Socket } from 'node:net';

// An idle socket holds its next read buffer, so it starts small (10,000 idle tunnels hold 20 MB);
// a read that fills it doubles it, up to the largest read worth making in one system call.
const SMALLEST_READ = 2 * 1024;
const LARGEST_READ = 256 * 1024;

const readers = new WeakMap<Socket, UpstreamReader>();

/**
 * One per dialled socket. Until the relay takes over, bytes go through the socket's own stream
 * (a parent proxy's CONNECT answer, an upgrade's response head are parsed from it as usual).
 * Every read gets a fresh buffer, never reused: a chunk still queued for writing stays intact.
 */
export class UpstreamReader {
  #socket: Socket | undefined;
  #sink: Socket | undefined;
  #size = SMALLEST_READ;

  /** The `onread` option to pass to net.connect; call attach() with the socket it returns. */
  readonly option: OnReadOpts = {
    buffer: () => Buffer.allocUnsafe(this.#size),
    callback: (bytes, buffer) => this.#onRead(bytes, buffer),
  };

  attach(socket: Socket): void {
    this.#socket = socket;
    readers.set(socket, this);
  }

  #onRead(bytes: number, buffer: Uint8Array): boolean {
    this.#size = bytes === buffer.length ? Math.min(this.#size * 2, LARGEST_READ) : SMALLEST_READ;
    const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
    const sink = this.#sink;
    if (sink === undefined) return this.#socket?.push(chunk) ?? false;
    if (!sink.write(chunk)) this.#socket?.pause();
    return true;
  }

  /**
   * Sends everything the socket reads to `sink` from now on, with backpressure (reading pauses
   * while the sink's buffer is full) and the socket's end passed on, as `pipe()` would.
   */
  forwardTo(sink: Socket): void {
    const socket = this.#socket;
    if (socket === undefined) throw new Error('UpstreamReader.forwardTo before attach');
    // Bytes the stream already holds (read before the relay started) go first.
    for (let held = socket.read() as Buffer | null; held !== null; held = socket.read() as Buffer | null) sink.write(held);
    this.#sink = sink;
    sink.on('drain', () => socket.resume());
    socket.once('end', () => sink.end());
    // Flowing mode lets the stream see the end of input (it never holds data from here on).
    socket.resume();
  }
}

/** The reader a socket was dialled with, if it was dialled for a relay. */
export function upstreamReaderOf(socket: Socket): UpstreamReader | undefined {
  return readers.get(socket);
}
