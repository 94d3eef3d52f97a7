// The listener for TCP 443 redirected by the guard: reads the ClientHello without terminating
// TLS, decides on its SNI, resolves and vets that name itself (never the address the agent
// dialled), then replays the peeked bytes to the vetted upstream and splices.
import { createServer, type Server, type Socket } from 'node:net';
import { SluiceError } from '../../errors.js';
import { newContext, type RequestContext } from '../context.js';
import { destinationOf, type Destination } from '../../destination.js';
import { admitAndDial } from '../admit-and-dial.js';
import type { TlsInterceptor } from '../intercept.js';
import { admit, recordBadRequest, RefusedError, type PipelineDeps } from '../pipeline.js';
import { relay } from '../relay.js';
import { refusalFor } from '../respond.js';
import type { ClientHelloParse } from '../tls/client-hello.js';
import { peekClientHello } from '../tls/peek-client-hello.js';
import { ALERT_ACCESS_DENIED, refuseWithTlsAlert, sendTlsAlert } from '../tls/alert.js';
import { trackConnections } from '../shutdown.js';

export interface TransparentTlsOptions {
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** further connections are dropped at accept, as on the proxy listener */
  readonly maxConnections: number;
  readonly interceptor?: TlsInterceptor;
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
  const credential = { kind: 'none' } as const;
  const interceptor = options.interceptor;
  if (interceptor?.wants(destination) === true) {
    // Intercepted: nothing is dialled for the tunnel itself; each decrypted request is admitted
    // and sent on its own. The SNI was judged above, so the session is admitted and counted now.
    try {
      await admit(deps, context, { credential, connection, destination });
    } catch (error) {
      return refuseWithTlsAlert(socket, error instanceof RefusedError ? error.refusal : refusalFor(context.id, 'INTERNAL'));
    }
    return interceptor.take(socket, peeked.bytes, { context, destination, credential, connection });
  }
  const upstream = await admitAndDial(deps, context, socket, { credential, connection, destination }, refuseWithTlsAlert);
  if (upstream === undefined) return;
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
