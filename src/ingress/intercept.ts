// The one TLS interceptor for inference hosts, used by explicit CONNECT tunnels and the
// transparent TLS listener alike: after the SNI check and before any byte goes upstream, it
// terminates the agent's TLS with a leaf from the local CA and feeds each decrypted request to the
// same forwarding code absolute-form requests take, where the metering stage sees it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { tunnelScreenEntry } from '../audit/kinds.js';
import type { ConfigFile } from '../config/schema.js';
import type { UpstreamPools } from '../connect/index.js';
import { formatHost, type Destination } from '../destination.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import type { PresentedCredential } from '../identity/proxy-credentials.js';
import { newContext, type RequestContext } from './context.js';
import { forwardRequest } from './forward.js';
import { countDecision, recordBadRequest, recordClose, type PipelineDeps } from './pipeline.js';
import { refuseOnResponse, refuseOnSocket } from './respond.js';
import { checkRequestHead } from './strict.js';
import { ALERT_ACCESS_DENIED, sendTlsAlert } from './tls/alert.js';
import type { LocalCa } from './tls/local-ca.js';
import { peekClientHello } from './tls/peek-client-hello.js';
import { tunnelSniVerdict } from './tls/tunnel-sni.js';

/** An admitted tunnel (CONNECT or transparent) whose TLS Sluice terminates. */
export interface InterceptedSession {
  /** the tunnel's own context: its decision is recorded, its close record comes when TLS ends */
  readonly context: RequestContext;
  readonly destination: Destination;
  /** the CONNECT's Proxy-Authorization: decrypted requests carry none of their own */
  readonly credential: PresentedCredential;
  readonly connection: ClientConnection;
}

export class TlsInterceptor {
  private readonly sessions = new WeakMap<Socket, InterceptedSession>();
  private readonly contexts = new Map<string, SecureContext>();
  private readonly http: Server;

  constructor(
    private readonly deps: PipelineDeps,
    private readonly pools: UpstreamPools,
    private readonly ca: LocalCa,
    private readonly limits: ConfigFile['limits'],
  ) {
    // Never listens: intercepted sockets are handed to it as connections. Same strict limits as
    // the proxy listener, since the agent speaks to it as directly.
    this.http = createServer({
      maxHeaderSize: limits.max_header_bytes,
      headersTimeout: limits.header_timeout_ms,
      requestTimeout: 0,
      keepAliveTimeout: Math.min(limits.idle_timeout_ms, 60_000),
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      insecureHTTPParser: false,
    });
    this.http.on('request', (request: IncomingMessage, response: ServerResponse) => this.onRequest(request, response, false));
    this.http.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => this.onRequest(request, response, true));
    // Realtime (WebSocket) sessions carry usage only in events Sluice does not parse: refused, so
    // no inference escapes metering (docs/inference.md).
    this.http.on('upgrade', (request: IncomingMessage, socket: Socket) => {
      const context = newContext('upgrade', this.sessions.get(request.socket)?.context.ingress ?? deps.ingress, `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? 0}`, request.method ?? 'GET');
      void recordBadRequest(deps, context, new SluiceError('REALTIME_REFUSED', request.url ?? '')).then((refusal) => refuseOnSocket(socket, refusal));
    });
    this.http.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
      if (!socket.writable || error.code === 'ECONNRESET') return void socket.destroy();
      const context = newContext('forward', deps.ingress, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, '-');
      void recordBadRequest(deps, context, new SluiceError('BAD_REQUEST', error.code)).then((refusal) => refuseOnSocket(socket, refusal));
    });
  }

  /** Inference hosts only; every other host stays an opaque tunnel. */
  wants(destination: Destination): boolean {
    return this.deps.meter?.isInferenceHost(destination.host) === true;
  }

  /**
   * An admitted CONNECT to an inference host: the 200 is sent, then the ClientHello must name the
   * CONNECT host (domain fronting otherwise) before Sluice answers it with its own certificate.
   */
  async takeTunnel(client: Socket, head: Buffer, session: InterceptedSession): Promise<void> {
    const peeked = await peekClientHello(client, this.limits.header_timeout_ms, head);
    if (peeked === null) {
      recordClose(this.deps, session.context, 'ok');
      return void client.destroy();
    }
    const { host, kind } = session.destination;
    const verdict = peeked.hello.kind === 'invalid' ? { kind: 'deny' as const, error: new SluiceError('CLIENT_HELLO_INVALID', peeked.hello.reason) } : tunnelSniVerdict(peeked.bytes, host, kind === 'name');
    if (verdict.kind !== 'pass' || peeked.hello.kind !== 'hello') {
      // Plain bytes to an inference host would go unmetered: only TLS is intercepted and passed.
      const error = verdict.kind === 'deny' ? verdict.error : new SluiceError('CLIENT_HELLO_INVALID', 'not TLS');
      countDecision(this.deps, session.context, { verdict: 'deny', reason: error.code.toLowerCase() });
      this.deps.log.warn({ request_id: session.context.id, code: error.code, detail: error.message }, 'intercepted tunnel refused after CONNECT');
      this.deps.audit.append(tunnelScreenEntry(session.context.id, error)).catch((auditError: unknown) => this.deps.log.error({ err: auditError }, 'audit append failed'));
      sendTlsAlert(client, ALERT_ACCESS_DENIED);
      recordClose(this.deps, session.context, error.code);
      return;
    }
    countDecision(this.deps, session.context);
    this.take(client, peeked.bytes, session);
  }

  /** Terminates TLS on `client`, whose `peeked` bytes (the ClientHello) were read but not consumed. */
  take(client: Socket, peeked: Buffer, session: InterceptedSession): void {
    // TLSSocket reads what is buffered on the socket first, so the hello is not lost.
    client.unshift(peeked);
    const secure = new TLSSocket(client, { isServer: true, secureContext: this.contextFor(session.destination.host), ALPNProtocols: ['http/1.1'] });
    const active = this.deps.metrics.connectionsActive.labels({ kind: 'tunnel' });
    active.inc();
    let outcome: ErrorCode | 'ok' = 'ok';
    secure.on('error', (error: Error & { code?: string }) => {
      // A client that rejects the certificate (it does not trust the local CA yet) ends here.
      if (outcome === 'ok') outcome = error.code === 'ECONNRESET' ? 'ok' : 'CLIENT_HELLO_INVALID';
      this.deps.log.info({ request_id: session.context.id, err: error.message }, 'intercepted TLS session failed');
      secure.destroy();
    });
    secure.once('close', () => {
      active.dec();
      session.context.bytesUp = client.bytesRead;
      session.context.bytesDown = client.bytesWritten;
      client.destroy();
      recordClose(this.deps, session.context, outcome);
    });
    secure.setTimeout(this.limits.idle_timeout_ms, () => secure.destroy());
    client.setTimeout(0);
    // Small answers (a 429, the last SSE event) must leave at once, not wait for an ACK.
    client.setNoDelay(true);
    this.sessions.set(secure, session);
    // The TLS layer reads the raw socket's handle itself; resuming the raw socket would race it
    // for the bytes.
    this.http.emit('connection', secure);
  }

  private contextFor(host: string): SecureContext {
    let context = this.contexts.get(host);
    if (context === undefined) {
      const leaf = this.ca.leafFor(host);
      context = createSecureContext({ key: leaf.key, cert: leaf.cert });
      this.contexts.set(host, context);
    }
    return context;
  }

  private onRequest(request: IncomingMessage, response: ServerResponse, expectsContinue: boolean): void {
    const session = this.sessions.get(request.socket);
    // A decrypted request arrived on the listener its tunnel did (explicit CONNECT or transparent TLS).
    const context = newContext('forward', session?.context.ingress ?? this.deps.ingress, session?.context.client ?? '?', request.method ?? 'GET');
    const run = async (): Promise<void> => {
      if (session === undefined) throw new SluiceError('INTERNAL', 'request on a socket that is no intercepted session');
      const { destination } = session;
      const authority = destination.port === 443 ? formatHost(destination) : `${formatHost(destination)}:${destination.port}`;
      try {
        checkRequestHead(request);
        const url = request.url ?? '';
        if (!url.startsWith('/')) throw new SluiceError('BAD_TARGET', 'inside an intercepted session requests are origin-form');
        // The certificate was minted for this host: a Host naming another would be fronting.
        const named = (request.headers.host ?? authority).toLowerCase();
        if (named !== authority && named !== `${formatHost(destination)}:${destination.port}`) throw new SluiceError('MISDIRECTED_REQUEST', `${named} inside ${authority}`);
        await forwardRequest(this.deps, this.pools, {
          request,
          response,
          context,
          target: { destination, scheme: 'https', path: url, authority },
          credential: session.credential,
          connection: session.connection,
          expectsContinue,
          insideDurableSession: true,
        });
      } catch (error) {
        refuseOnResponse(response, await recordBadRequest(this.deps, context, error));
      }
    };
    run().catch((error: unknown) => {
      this.deps.log.error({ err: error }, 'intercepted request failed');
      response.destroy();
    });
  }

  close(): void {
    this.http.closeAllConnections();
  }
}
