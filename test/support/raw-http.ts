// Sends exact bytes to a listener and collects the reply, for tests of malformed or unusual
// requests that no well-behaved client library will produce.
import { connect } from 'node:net';

export interface RawReply {
  readonly text: string;
  readonly status: number;
  /** whether the server closed the connection */
  readonly closed: boolean;
}

/** Writes `chunks` (with an optional pause between them) and reads until close or `waitMs` of silence. */
export function rawExchange(port: number, chunks: readonly (string | Buffer)[], options: { pauseMs?: number; waitMs?: number } = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: match === null ? 0 : Number(match[1]), closed });
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), options.waitMs ?? 1500);
    };
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? finish(true) : reject(error)));
    socket.on('connect', async () => {
      for (const chunk of chunks) {
        socket.write(chunk);
        if (options.pauseMs !== undefined) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
      arm();
    });
  });
}
