// One DNS-over-TCP client: length-prefixed queries answered in order, reading paused while replies
// back up, so a client that pipelines and never reads its answers costs bounded memory.
import type { Socket } from 'node:net';

/** Queries taken off the wire but not yet answered; RFC 7766 6.2.1.1 lets a server cap pipelining. */
export const MAX_PENDING_REPLIES = 16;
/** Bytes read but not yet framed: a query is at most 65,535 bytes plus its two-byte prefix. */
const MAX_UNPARSED_BYTES = 4 * 65_537;

export interface TcpBacklog {
  readonly pendingReplies: number;
  /** replies written to the socket that the kernel has not taken yet */
  readonly unsentBytes: number;
  readonly unparsedBytes: number;
  readonly reading: boolean;
}

/** Answers one query; null means the message is not DNS and the connection is dropped. */
export type TcpAnswer = (message: Buffer) => Promise<Buffer | null>;

export class DnsTcpConnection {
  #unparsed: Buffer = Buffer.alloc(0);
  #pending = 0;
  #replies: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    private readonly answer: TcpAnswer,
  ) {
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#pump());
  }

  get backlog(): TcpBacklog {
    return { pendingReplies: this.#pending, unsentBytes: this.socket.writableLength, unparsedBytes: this.#unparsed.length, reading: !this.socket.isPaused() };
  }

  #onData(chunk: Buffer): void {
    this.#unparsed = this.#unparsed.length === 0 ? chunk : Buffer.concat([this.#unparsed, chunk]);
    if (this.#unparsed.length > MAX_UNPARSED_BYTES) return void this.socket.destroy();
    this.#pump();
  }

  /** Takes whole queries off the input while there is room for their replies; reads on only then. */
  #pump(): void {
    // RFC 1035 4.2.2 / RFC 7766 8: each message has a two-byte length prefix.
    while (this.#hasRoom() && this.#unparsed.length >= 2 && this.#unparsed.length >= 2 + this.#unparsed.readUInt16BE(0)) {
      const end = 2 + this.#unparsed.readUInt16BE(0);
      const message = this.#unparsed.subarray(2, end);
      this.#unparsed = this.#unparsed.subarray(end);
      this.#pending += 1;
      // Answered one after another, so replies leave in the order the queries came.
      this.#replies = this.#replies.then(() => this.#reply(message)).catch(() => void this.socket.destroy());
    }
    if (this.#hasRoom()) this.socket.resume();
    else this.socket.pause();
  }

  #hasRoom(): boolean {
    return this.#pending < MAX_PENDING_REPLIES && !this.socket.writableNeedDrain;
  }

  async #reply(message: Buffer): Promise<void> {
    const reply = await this.answer(message);
    this.#pending -= 1;
    if (reply === null) return void this.socket.destroy();
    if (this.socket.destroyed) return;
    const framed = Buffer.alloc(2 + reply.length);
    framed.writeUInt16BE(reply.length, 0);
    reply.copy(framed, 2);
    this.socket.write(framed);
    this.#pump();
  }
}
