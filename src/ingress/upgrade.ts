// `Upgrade` over plain HTTP (WebSocket, RFC 6455 §4.1) through the proxy: admit like any request,
// send the handshake, and relay raw bytes only once the origin has switched protocols.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { errorCodeFor } from '../connect/index.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential } from '../identity/proxy-credentials.js';
import { newContext, pathWithoutQuery, type RequestContext } from './context.js';
import { parseAbsoluteTarget, type AbsoluteTarget } from './request-target.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './hop-by-hop.js';
import { recordBadRequest, recordClose, type PipelineDeps } from './pipeline.js';
import { admitAndDial } from './admit-and-dial.js';
import { relay, trackExchange } from './relay.js';
import { admittedHeader, refusalFor, refuseOnSocket } from './respond.js';
import { checkRequestHead, hasBody } from './strict.js';

export interface UpgradeOptions {
  readonly idleTimeoutMs: number;
  /** the bound on the origin's response head, as on the agent's request head */
  readonly maxHeaderBytes: number;
}

const NOTHING_DROPPED: ReadonlySet<string> = new Set();

/** RFC 9110 §7.8: `Upgrade: websocket, h2c`; protocol names compare case-insensitively. */
function protocols(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== ''));
}

function head(statusLine: string, pairs: readonly string[]): string {
  const lines = [statusLine];
  for (let i = 0; i < pairs.length; i += 2) lines.push(`${pairs[i] ?? ''}: ${pairs[i + 1] ?? ''}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

export async function handleUpgrade(
  deps: PipelineDeps,
  options: UpgradeOptions,
  request: IncomingMessage,
  client: Socket,
  firstBytes: Buffer,
  connection: ClientConnection,
): Promise<void> {
  const context = newContext('upgrade', deps.ingress, `${connection.pair.remoteAddress}:${connection.pair.remotePort}`, request.method ?? 'GET');
  let target: AbsoluteTarget;
  try {
    checkRequestHead(request);
    // What follows an upgrade request's head belongs to the new protocol: a body there could not
    // be told apart from it by every parser on the way.
    if (hasBody(request)) throw new SluiceError('BAD_FRAMING', 'an Upgrade request cannot carry a body');
    target = parseAbsoluteTarget(request.url ?? '');
    if (target.scheme !== 'http') throw new SluiceError('BAD_TARGET', 'upgrade requests through the proxy must be http://; use CONNECT for TLS');
  } catch (error) {
    refuseOnSocket(client, await recordBadRequest(deps, context, error));
    return;
  }
  const credential = readProxyCredential(request.headers['proxy-authorization']);
  const upstream = await admitAndDial(deps, context, client, { credential, connection, destination: target.destination, path: pathWithoutQuery(target.path), traceparent: request.headers.traceparent }, refuseOnSocket);
  if (upstream === undefined) return;
  // The handshake keeps Connection/Upgrade (they are the point of the request) but drops proxy
  // credentials and every other hop-by-hop header.
  const headers = forwardRequestHeaders(request.rawHeaders, target.authority, NOTHING_DROPPED);
  headers.push('Connection', 'Upgrade', 'Upgrade', request.headers.upgrade ?? '');
  handshake(deps, context, options, { client, upstream, firstBytes, offered: protocols(request.headers.upgrade) }, { method: request.method ?? 'GET', path: target.path, headers });
}

interface Sockets {
  readonly client: Socket;
  readonly upstream: Socket;
  /** the agent's bytes that arrived with its request head */
  readonly firstBytes: Buffer;
  readonly offered: ReadonlySet<string>;
}

/**
 * Sends the handshake and reads the origin's answer with Node's HTTP parser (bounded head,
 * timed). Until then the agent's socket stays paused: nothing it pipelined reaches the origin.
 */
function handshake(deps: PipelineDeps, context: RequestContext, options: UpgradeOptions, sockets: Sockets, sent: { method: string; path: string; headers: string[] }): void {
  const { client, upstream } = sockets;
  const sluiceDecision = admittedHeader(context);
  const outgoing = httpRequest({ ...sent, createConnection: () => upstream, maxHeaderSize: options.maxHeaderBytes });
  let settled = false;
  const abandon = (): void => {
    outgoing.destroy();
  };
  const timer = setTimeout(() => outgoing.destroy(new SluiceError('UPSTREAM_TIMEOUT', 'no answer to the upgrade request')), options.idleTimeoutMs);
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    clearTimeout(timer);
    client.off('close', abandon);
    return true;
  };
  const fail = (code: ErrorCode): void => {
    upstream.destroy();
    refuseOnSocket(client, refusalFor(context.id, code));
    context.bytesUp = upstream.bytesWritten;
    context.bytesDown = upstream.bytesRead;
    recordClose(deps, context, code);
  };
  // The HTTP server let go of the agent's socket with the upgrade, its error handler included.
  client.on('error', abandon);
  client.once('close', abandon);
  outgoing.once('upgrade', (response: IncomingMessage, _socket: unknown, upstreamHead: Buffer) => {
    if (!settle()) return;
    // RFC 9110 §7.8: the origin switches to protocols the agent offered, and says which.
    const chosen = protocols(response.headers.upgrade);
    if (chosen.size === 0 || [...chosen].some((name) => !sockets.offered.has(name))) return fail('UPSTREAM_PROTOCOL');
    // From here the relay handles the agent's socket errors.
    client.off('error', abandon);
    client.write(head(`HTTP/1.1 101 ${response.statusMessage ?? ''}`, [...response.rawHeaders, 'Sluice-Decision', sluiceDecision]));
    if (upstreamHead.length > 0) client.write(upstreamHead);
    relay(deps, context, client, upstream, { idleTimeoutMs: options.idleTimeoutMs, firstBytes: sockets.firstBytes });
  });
  outgoing.once('response', (response: IncomingMessage) => {
    if (settle()) declined(deps, context, sockets, response, sluiceDecision);
  });
  outgoing.once('error', (error: Error) => {
    if (settle()) fail(errorCodeFor(error));
  });
  outgoing.end();
}

/**
 * The origin answered without switching (most ignore Upgrade and keep the connection): that one
 * response goes to the agent as an ordinary one, and the connection closes after it. Whatever the
 * agent pipelined behind the upgrade request was never decided, so it is never forwarded.
 */
function declined(deps: PipelineDeps, context: RequestContext, sockets: Sockets, response: IncomingMessage, sluiceDecision: string): void {
  const { client, upstream } = sockets;
  const close = trackExchange(deps, context, client, upstream);
  deps.log.info({ request_id: context.id, status: response.statusCode }, 'origin declined the upgrade; closing after its response');
  const finish = (): void => close(response.complete ? 'ok' : 'UPSTREAM_RESET');
  // Framing is the origin's, decoded by the parser; the body is then delimited by the close
  // (RFC 9112 §6.3), or by its Content-Length when it had one.
  const pairs = [...forwardResponseHeaders(response.headers), 'Sluice-Decision', sluiceDecision, 'Connection', 'close'];
  client.write(head(`HTTP/1.1 ${response.statusCode ?? 502} ${response.statusMessage ?? ''}`, pairs));
  response.pipe(client);
  client.once('finish', finish);
  client.once('close', finish);
  response.once('close', () => {
    if (!response.complete) finish();
  });
}
