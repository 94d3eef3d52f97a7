// Buffers an agent's first bytes until they hold a whole ClientHello (or say they never will):
// the transparent listener and intercepted CONNECT tunnels judge the SNI before anything else.
import type { Socket } from 'node:net';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHelloParse } from './client-hello.js';

export interface PeekedHello {
  /** every byte read so far, for the TLS terminator or the upstream to consume */
  readonly bytes: Buffer;
  readonly hello: ClientHelloParse;
}

/** null when the agent closed first; the socket is left paused either way. */
export function peekClientHello(socket: Socket, timeoutMs: number, already: Buffer = Buffer.alloc(0)): Promise<PeekedHello | null> {
  return new Promise((resolve) => {
    let bytes = already;
    const finish = (result: PeekedHello | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(result);
    };
    const judge = (): void => {
      const hello = parseClientHello(bytes);
      if (hello.kind !== 'incomplete') finish({ bytes, hello });
      else if (bytes.length > MAX_CLIENT_HELLO_BYTES + 1024) finish({ bytes, hello: { kind: 'invalid', reason: 'ClientHello too large' } });
    };
    const onData = (chunk: Buffer): void => {
      bytes = Buffer.concat([bytes, chunk]);
      judge();
    };
    const onEnd = (): void => finish(null);
    const timer = setTimeout(() => finish({ bytes, hello: { kind: 'invalid', reason: 'timeout' } }), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    if (bytes.length > 0) judge();
    socket.resume();
  });
}
