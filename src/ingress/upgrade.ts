// `Upgrade` over plain HTTP (WebSocket, RFC 6455 §4.1) through the proxy: admit like any request,
// send the handshake to the vetted address, then relay raw bytes both ways.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { isSluiceError, SluiceError } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential } from '../identity/proxy-credentials.js';
import { newContext, pathWithoutQuery } from './context.js';
import { parseAbsoluteTarget, type AbsoluteTarget } from './destination.js';
import { forwardRequestHeaders } from './hop-by-hop.js';
import { recordBadRequest, type PipelineDeps } from './pipeline.js';
import { admitAndDial, relay } from './relay.js';
import { refuseOnSocket } from './respond.js';
import { checkRequestHead } from './strict.js';

const NOTHING_DROPPED: ReadonlySet<string> = new Set();

export async function handleUpgrade(
  deps: PipelineDeps,
  idleTimeoutMs: number,
  request: IncomingMessage,
  client: Socket,
  head: Buffer,
  connection: ClientConnection,
): Promise<void> {
  const context = newContext('upgrade', `${connection.pair.remoteAddress}:${connection.pair.remotePort}`, request.method ?? 'GET');
  let target: AbsoluteTarget;
  try {
    checkRequestHead(request);
    target = parseAbsoluteTarget(request.url ?? '');
    if (target.scheme !== 'http') throw new SluiceError('BAD_TARGET', 'upgrade requests through the proxy must be http://; use CONNECT for TLS');
  } catch (error) {
    const failure = isSluiceError(error) ? error : new SluiceError('BAD_REQUEST');
    refuseOnSocket(client, await recordBadRequest(deps, context, failure));
    return;
  }
  const credential = readProxyCredential(request.headers['proxy-authorization']);
  const path = pathWithoutQuery(target.path);
  const upstream = await admitAndDial(deps, context, client, { credential, connection, destination: target.destination, path });
  if (upstream === undefined) return;
  // The handshake keeps Connection/Upgrade (they are the point of the request) but drops proxy
  // credentials and every other hop-by-hop header.
  const headers = forwardRequestHeaders(request.rawHeaders, target.authority, NOTHING_DROPPED);
  const lines = [`${request.method ?? 'GET'} ${target.path} HTTP/1.1`, 'Connection: Upgrade', `Upgrade: ${request.headers.upgrade ?? ''}`];
  for (let i = 0; i < headers.length; i += 2) lines.push(`${headers[i] ?? ''}: ${headers[i + 1] ?? ''}`);
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
  relay(deps, context, client, upstream, { idleTimeoutMs, firstBytes: head });
}
