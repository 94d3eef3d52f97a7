// Opens a tunnel through a parent proxy on a socket already connected to it: one CONNECT
// (RFC 9110 §9.3.6) with Sluice's credentials, and the parent's answer read with a bounded head.
import type { Socket } from 'node:net';
import { formatAuthority, type Destination } from '../destination.js';
import { SluiceError } from '../errors.js';
import type { ParentProxy } from './parent-proxy.js';
import { upstreamErrorFrom } from './upstream-errors.js';

/** A CONNECT answer is a status line and a few headers; anything longer is not a proxy talking. */
const MAX_HEAD_BYTES = 16_384;
const HEAD_END = '\r\n\r\n';
const STATUS_LINE = /^HTTP\/1\.[01] ([0-9]{3})(?: [^\r\n]*)?$/;

function connectRequest(target: Destination, proxy: ParentProxy): string {
  const authority = formatAuthority(target);
  const authorization = proxy.authorization();
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${authorization === undefined ? '' : `Proxy-Authorization: ${authorization}\r\n`}\r\n`;
}

/** The outcome of the parent's answer: nothing when it opened the tunnel, else why not. */
function refusalOf(head: string, target: Destination, proxy: ParentProxy): SluiceError | undefined {
  const status = STATUS_LINE.exec(head.slice(0, head.indexOf('\r\n')))?.[1];
  if (status === undefined) return new SluiceError('UPSTREAM_PROTOCOL', `parent proxy ${proxy.label} did not answer CONNECT with HTTP/1.x`);
  if (status.startsWith('2')) return undefined;
  if (status === '407') return new SluiceError('PARENT_PROXY_AUTH', `${proxy.label} answered 407`);
  return new SluiceError('PARENT_PROXY_REFUSED', `${proxy.label} answered ${status} to CONNECT ${formatAuthority(target)}`);
}

/**
 * Sends CONNECT for `target` and resolves once the parent answers 2xx; the socket then carries
 * the tunnel, paused, with any bytes that came after the answer put back to be read first.
 * Rejects with PARENT_PROXY_AUTH, PARENT_PROXY_REFUSED or UPSTREAM_PROTOCOL; the caller owns the
 * socket and its deadline, and destroys the socket on failure.
 */
export function openTunnel(socket: Socket, target: Destination, proxy: ParentProxy): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let received = Buffer.alloc(0);
    const done = (error?: SluiceError): void => {
      socket.off('readable', onReadable);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReadable = (): void => {
      for (let chunk: Buffer | null = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        received = Buffer.concat([received, chunk]);
        const end = received.indexOf(HEAD_END);
        if (end < 0 && received.length > MAX_HEAD_BYTES) {
          done(new SluiceError('UPSTREAM_PROTOCOL', `parent proxy ${proxy.label} sent a CONNECT answer over ${MAX_HEAD_BYTES} bytes`));
          return;
        }
        if (end < 0) continue;
        const refusal = refusalOf(received.subarray(0, end).toString('latin1'), target, proxy);
        const rest = received.subarray(end + HEAD_END.length);
        if (refusal === undefined && rest.length > 0) socket.unshift(rest);
        done(refusal);
        return;
      }
    };
    // 'close' also follows a destroy by the caller's deadline, so the promise always settles.
    const onClose = (): void => done(new SluiceError('UPSTREAM_RESET', `parent proxy ${proxy.label} closed before answering CONNECT`));
    const onError = (error: Error): void => done(upstreamErrorFrom(error, `parent proxy ${proxy.label}`));
    socket.on('readable', onReadable);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.write(connectRequest(target, proxy));
  });
}
