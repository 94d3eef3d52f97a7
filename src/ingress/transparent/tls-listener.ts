// The listener for TCP 443 redirected by the guard: reads the ClientHello without terminating
// TLS, decides on its SNI, resolves and vets that name itself (never the address the agent
// dialled), then replays the peeked bytes to the vetted upstream and splices.
import { createServer, type Server, type Socket } from 'node:net';
import { SluiceError } from '../../errors.js';
import { newContext, type RequestContext } from '../context.js';
import { destinationOf, type Destination } from '../../destination.js';
import { admitAndDial } from '../admit-and-dial.js';
import { recordBadRequest, type PipelineDeps } from '../pipeline.js';
import { relay } from '../relay.js';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, type ClientHello, type ClientHelloParse } from '../tls/client-hello.js';
import { ALERT_ACCESS_DENIED, refuseWithTlsAlert, sendTlsAlert } from '../tls/alert.js';
import { trackConnections } from '../shutdown.js';

/** The seam for terminating TLS to chosen hosts (metering inference APIs) instead of splicing. */
export interface TlsInterceptor {
  wants(destination: Destination, hello: ClientHello): boolean;
  /** owns both sockets from here; `peeked` holds the client's bytes read so far, unconsumed */
  take(client: Socket, peeked: Buffer, upstream: Socket, context: RequestContext): void;
}

export interface TransparentTlsOptions {
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** further connections are dropped at accept, as on the proxy listener */
  readonly maxConnections: number;
  readonly interceptor?: TlsInterceptor;
}

/** Buffers the agent's first bytes until they hold a whole ClientHello, or say they never will. */
function peekClientHello(socket: Socket, timeoutMs: number): Promise<{ bytes: Buffer; hello: ClientHelloParse } | null> {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    const finish = (result: { bytes: Buffer; hello: ClientHelloParse } | null): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      bytes = Buffer.concat([bytes, chunk]);
      const hello = parseClientHello(bytes);
      if (hello.kind !== 'incomplete') finish({ bytes, hello });
      else if (bytes.length > MAX_CLIENT_HELLO_BYTES + 1024) finish({ bytes, hello: { kind: 'invalid', reason: 'ClientHello too large' } });
    };
    const onEnd = (): void => finish(null);
    const timer = setTimeout(() => finish({ bytes, hello: { kind: 'invalid', reason: 'timeout' } }), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/** Why a parsed hello cannot be judged, as a catalogue code; null when its SNI can be. */
function unusable(hello: ClientHelloParse): SluiceError | null {
  switch (hello.kind) {
    case 'incomplete':
      return new SluiceError('CLIENT_HELLO_INVALID', 'incomplete');
    case 'invalid':
      return hello.reason === 'timeout' ? new SluiceError('HEADER_TIMEOUT', 'no ClientHello in time') : new SluiceError('CLIENT_HELLO_INVALID', hello.reason);
    case 'hello':
      // ECH hides the real name behind the outer SNI: judging the decoy would be judging nothing.
      if (hello.ech) return new SluiceError('ECH_REFUSED');
      if (hello.sni === null) return new SluiceError('SNI_MISSING');
      return null;
  }
}

async function refuse(deps: PipelineDeps, context: RequestContext, socket: Socket, error: unknown): Promise<void> {
  await recordBadRequest(deps, context, error, 'BAD_HOST');
  sendTlsAlert(socket, ALERT_ACCESS_DENIED);
}

async function handle(deps: PipelineDeps, options: TransparentTlsOptions, socket: Socket): Promise<void> {
  socket.on('error', () => socket.destroy());
  // Identity first, at accept: the client cannot yet have closed or half-closed its socket.
  const connection = deps.identity.connection(socket);
  const context = newContext('tunnel', deps.ingress, `${connection.pair.remoteAddress}:${connection.pair.remotePort}`, 'TLS');
  const peeked = await peekClientHello(socket, options.headerTimeoutMs);
  if (peeked === null) return void socket.destroy();
  const problem = unusable(peeked.hello);
  if (problem !== null || peeked.hello.kind !== 'hello' || peeked.hello.sni === null) {
    return refuse(deps, context, socket, problem ?? new SluiceError('CLIENT_HELLO_INVALID'));
  }
  let destination: Destination;
  try {
    destination = destinationOf(peeked.hello.sni, 443);
  } catch (error) {
    return refuse(deps, context, socket, error);
  }
  const upstream = await admitAndDial(deps, context, socket, { credential: { kind: 'none' }, connection, destination }, refuseWithTlsAlert);
  if (upstream === undefined) return;
  if (options.interceptor?.wants(destination, peeked.hello) === true) return options.interceptor.take(socket, peeked.bytes, upstream, context);
  relay(deps, context, socket, upstream, { idleTimeoutMs: options.idleTimeoutMs, firstBytes: peeked.bytes });
}

export function createTransparentTlsServer(deps: PipelineDeps, options: TransparentTlsOptions): Server {
  const server = createServer((socket) => {
    handle(deps, options, socket).catch((error: unknown) => {
      deps.log.error({ err: error }, 'transparent TLS handler failed');
      socket.destroy();
    });
  });
  server.maxConnections = options.maxConnections;
  trackConnections(server);
  return server;
}
