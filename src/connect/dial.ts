// Connects to a VettedDestination and nothing else: tries its vetted addresses with staggered
// Happy Eyeballs attempts (RFC 8305), keeps the first that connects and destroys the rest.
import { connect, type Socket } from 'node:net';
import { SluiceError } from '../errors.js';
import { formatAuthority, type Destination } from '../destination.js';
import { openTunnel } from './parent-connect.js';
import { isVetted, type ParentHop, type VettedDestination } from './resolve-and-vet.js';
import { upstreamErrorFrom } from './upstream-errors.js';
import { UpstreamReader } from './upstream-reader.js';

/** RFC 8305 §5 recommends 250 ms between connection attempts. */
export const CONNECTION_ATTEMPT_DELAY_MS = 250;

export interface DialOptions {
  /** for the whole dial, across all attempts */
  readonly timeoutMs: number;
  /** aborting destroys every attempt and rejects with the signal's reason */
  readonly signal?: AbortSignal;
  readonly attemptDelayMs?: number;
  /** the socket will be relayed: read it through an UpstreamReader (large reads, no stream per chunk) */
  readonly forRelay?: boolean;
}

export interface Dialled {
  readonly socket: Socket;
  readonly address: string;
  readonly port: number;
  readonly connectMs: number;
}

/** `address:port`, with IPv6 in brackets: how close records and logs name an upstream. */
export function addressWithPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Connects to the vetted destination, directly or through the parent proxy it was vetted for. */
export function dial(vetted: VettedDestination, options: DialOptions): Promise<Dialled> {
  if (!isVetted(vetted)) return Promise.reject(new SluiceError('INTERNAL', 'refusing to dial a destination that resolveAndVet did not vet'));
  return vetted.parent === undefined ? dialAddresses(vetted, options) : dialThroughParent(vetted.destination, vetted.parent, options);
}

/** The parent's vetted addresses first, then its CONNECT answer, within the one dial deadline. */
async function dialThroughParent(destination: Destination, parent: ParentHop, options: DialOptions): Promise<Dialled> {
  const started = performance.now();
  const hop = await dialAddresses(parent.vetted, options);
  const { signal } = options;
  let failure: unknown;
  // Either ends the wait by destroying the socket, which settles openTunnel.
  const stop = (reason: unknown): void => {
    failure ??= reason;
    hop.socket.destroy();
  };
  const onAbort = (): void => stop(signal?.reason);
  const remaining = Math.max(1, options.timeoutMs - (performance.now() - started));
  const timer = setTimeout(() => stop(new SluiceError('UPSTREAM_TIMEOUT', `parent proxy ${parent.proxy.label} did not answer CONNECT ${formatAuthority(destination)} in time`)), remaining);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await openTunnel(hop.socket, destination, parent.proxy);
  } catch (error) {
    hop.socket.destroy();
    throw failure ?? error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  return { ...hop, connectMs: performance.now() - started };
}

function dialAddresses(vetted: VettedDestination, options: DialOptions): Promise<Dialled> {
  const { addresses, destination } = vetted;
  const port = destination.port;
  const delayMs = options.attemptDelayMs ?? CONNECTION_ATTEMPT_DELAY_MS;
  const signal = options.signal;
  return new Promise<Dialled>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    if (addresses.length === 0) {
      reject(new SluiceError('INTERNAL', `no vetted address for ${formatAuthority(destination)}`));
      return;
    }
    const started = performance.now();
    const attempts = new Set<Socket>();
    let next = 0;
    let settled = false;
    let firstError: unknown;
    let staggerTimer: NodeJS.Timeout | undefined;

    const finish = (): void => {
      settled = true;
      clearTimeout(overallTimer);
      clearTimeout(staggerTimer);
      signal?.removeEventListener('abort', onAbort);
      for (const loser of attempts) loser.destroy();
      attempts.clear();
    };
    const fail = (error: unknown): void => {
      if (settled) return;
      finish();
      reject(error);
    };
    const onAbort = (): void => fail(signal?.reason);
    const tried = (): string => addresses.slice(0, next).map((entry) => entry.address).join(', ');
    const overallTimer = setTimeout(() => {
      fail(new SluiceError('UPSTREAM_TIMEOUT', `${formatAuthority(destination)} via ${tried()} after ${options.timeoutMs} ms`));
    }, options.timeoutMs);

    const startNext = (): void => {
      clearTimeout(staggerTimer);
      const entry = addresses[next];
      if (settled || entry === undefined) return;
      next++;
      const reader = options.forRelay === true ? new UpstreamReader() : undefined;
      const socket = connect({ host: entry.address, port, family: entry.family, noDelay: true, ...(reader === undefined ? {} : { onread: reader.option }) });
      reader?.attach(socket);
      attempts.add(socket);
      socket.once('connect', () => {
        if (settled) return;
        attempts.delete(socket);
        socket.removeListener('error', onError);
        finish();
        resolve({ socket, address: entry.address, port, connectMs: performance.now() - started });
      });
      const onError = (error: Error): void => {
        attempts.delete(socket);
        socket.destroy();
        firstError ??= error;
        // RFC 8305 §5: a failed attempt starts the next one at once instead of waiting out the delay.
        if (next < addresses.length) startNext();
        else if (attempts.size === 0) fail(upstreamErrorFrom(firstError, `${formatAuthority(destination)} via ${tried()}`));
      };
      socket.once('error', onError);
      if (next < addresses.length) staggerTimer = setTimeout(startNext, delayMs);
    };

    signal?.addEventListener('abort', onAbort, { once: true });
    startNext();
  });
}
