// The explicit forward-proxy listener: Node's HTTP parser with strict limits, routing CONNECT,
// absolute-form requests and upgrades into the pipeline, and clean errors for everything else.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConfigFile } from '../config/schema.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import { newContext } from './context.js';
import { handleForward } from './forward.js';
import type { TlsInterceptor } from './intercept.js';
import { recordBadRequest, type PipelineDeps } from './pipeline.js';
import { refusalFor, refuseOnResponse, refuseOnSocket } from './respond.js';
import { trackConnections } from './shutdown.js';
import { versionErrorCode } from './strict.js';
import { handleConnect } from './tunnel.js';
import { handleUpgrade } from './upgrade.js';
import type { UpstreamPools } from '../connect/index.js';

interface ConnectionState {
  readonly client: ClientConnection;
  /** the response being produced, if any: a framing error found mid-body is answered on it */
  current: ServerResponse | undefined;
}

/** llhttp error codes → what the agent is told. Framing errors close the connection. */
const PARSE_ERRORS: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'HEADER_TIMEOUT',
  ERR_HTTP_HEADERS_TIMEOUT: 'HEADER_TIMEOUT',
  HPE_INVALID_URL: 'BAD_TARGET',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'BAD_FRAMING',
  HPE_INVALID_CONTENT_LENGTH: 'BAD_FRAMING',
  HPE_INVALID_TRANSFER_ENCODING: 'BAD_FRAMING',
  HPE_INVALID_CHUNK_SIZE: 'BAD_FRAMING',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'BAD_FRAMING',
};

export function createProxyServer(deps: PipelineDeps, limits: ConfigFile['limits'], pools: UpstreamPools, verifyTunnelSni: boolean, interceptor?: TlsInterceptor): Server {
  const server = createServer({
    maxHeaderSize: limits.max_header_bytes,
    headersTimeout: limits.header_timeout_ms,
    // Whole-request timeouts would cut long uploads; idleness is policed by the socket timeout.
    requestTimeout: 0,
    keepAliveTimeout: Math.min(limits.idle_timeout_ms, 60_000),
    connectionsCheckingInterval: Math.min(1000, limits.header_timeout_ms),
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    insecureHTTPParser: false,
  });
  server.setTimeout(limits.idle_timeout_ms);
  trackConnections(server);
  const tunnel = { idleTimeoutMs: limits.idle_timeout_ms, headerTimeoutMs: limits.header_timeout_ms, verifyTunnelSni, ...(interceptor === undefined ? {} : { interceptor }) };
  const upgrade = { idleTimeoutMs: limits.idle_timeout_ms, maxHeaderBytes: limits.max_header_bytes };
  const states = new WeakMap<Socket, ConnectionState>();
  let open = 0;

  server.on('connection', (socket: Socket) => {
    open += 1;
    socket.once('close', () => {
      open -= 1;
    });
    if (open > limits.max_connections) {
      const context = newContext('forward', deps.ingress, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, '-');
      refuseOnSocket(socket, refusalFor(context.id, 'TOO_MANY_CONNECTIONS'));
      deps.metrics.decisions.inc({ verdict: 'error', reason: 'too_many_connections' });
      return;
    }
    // Who the client is gets fixed now: a later lookup would see whatever the client made of its
    // socket since (closed, half-closed), which is how an agent could pick another identity.
    states.set(socket, { client: deps.identity.connection(socket), current: undefined });
  });

  // Only a connection refused at the limit has no state; its late lookup is as strict (an
  // ESTABLISHED socket with the exact pair, else IDENTITY_UNAVAILABLE), so it cannot downgrade.
  const stateOf = (socket: Socket): ConnectionState => {
    let state = states.get(socket);
    if (state === undefined) {
      state = { client: deps.identity.connection(socket), current: undefined };
      states.set(socket, state);
    }
    return state;
  };

  const forward = (expectsContinue: boolean) => (request: IncomingMessage, response: ServerResponse): void => {
    const state = stateOf(request.socket);
    state.current = response;
    response.once('close', () => {
      if (state.current === response) state.current = undefined;
    });
    handleForward(deps, pools, request, response, state.client, expectsContinue).catch((error: unknown) => {
      deps.log.error({ err: error }, 'forward handler failed');
      response.destroy();
    });
  };
  server.on('request', forward(false));
  // Registering checkContinue stops Node answering 100 itself: it is sent after the decision.
  server.on('checkContinue', forward(true));

  server.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    handleConnect(deps, tunnel, request, socket, head, stateOf(socket).client).catch((error: unknown) => {
      deps.log.error({ err: error }, 'connect handler failed');
      socket.destroy();
    });
  });

  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    handleUpgrade(deps, upgrade, request, socket, head, stateOf(socket).client).catch((error: unknown) => {
      deps.log.error({ err: error }, 'upgrade handler failed');
      socket.destroy();
    });
  });

  server.on('clientError', (error: Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number }, socket: Socket) => {
    if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    const code = error.code === 'HPE_INVALID_VERSION' ? versionErrorCode(error.rawPacket, error.bytesParsed) : (PARSE_ERRORS[error.code ?? ''] ?? 'BAD_REQUEST');
    const current = states.get(socket)?.current;
    if (current !== undefined && current.headersSent) {
      // A framing error after the reply started: nothing can be said on this connection.
      socket.destroy();
      return;
    }
    // A request whose head parsed but whose body framing is broken (bad chunk size) is answered
    // on its own response object, which also stops the forwarder before it dispatches.
    const context = newContext('forward', deps.ingress, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, '-');
    recordBadRequest(deps, context, new SluiceError(code, error.code)).then(
      (refusal) => (current === undefined ? refuseOnSocket(socket, refusal) : refuseOnResponse(current, refusal)),
      () => socket.destroy(),
    );
  });

  return server;
}
