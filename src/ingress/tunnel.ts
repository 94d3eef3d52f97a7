// CONNECT host:port (RFC 9110 §9.3.6): admit, dial the vetted address, answer 200 only then,
// and relay bytes both ways until either side closes or goes idle.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential } from '../identity/proxy-credentials.js';
import { newContext } from './context.js';
import type { Destination } from '../destination.js';
import { parseConnectTarget } from './request-target.js';
import { recordBadRequest, type PipelineDeps } from './pipeline.js';
import { admitAndDial } from './admit-and-dial.js';
import { relay } from './relay.js';
import { admittedHeader, refuseOnSocket } from './respond.js';
import { checkRequestHead } from './strict.js';
import { tunnelSniVerdict } from './tls/tunnel-sni.js';

export interface TunnelOptions {
  readonly idleTimeoutMs: number;
  readonly headerTimeoutMs: number;
  /** refuse a tunnel whose ClientHello names another host than the CONNECT target */
  readonly verifyTunnelSni: boolean;
}

export async function handleConnect(
  deps: PipelineDeps,
  options: TunnelOptions,
  request: IncomingMessage,
  client: Socket,
  head: Buffer,
  connection: ClientConnection,
): Promise<void> {
  const context = newContext('tunnel', deps.ingress, `${connection.pair.remoteAddress}:${connection.pair.remotePort}`, 'CONNECT');
  let destination: Destination;
  try {
    checkRequestHead(request);
    destination = parseConnectTarget(request.url ?? '');
  } catch (error) {
    refuseOnSocket(client, await recordBadRequest(deps, context, error));
    return;
  }
  const credential = readProxyCredential(request.headers['proxy-authorization']);
  const upstream = await admitAndDial(deps, context, client, { credential, connection, destination, countLater: options.verifyTunnelSni, traceparent: request.headers.traceparent }, refuseOnSocket);
  if (upstream === undefined) return;
  client.write(`HTTP/1.1 200 Connection Established\r\nSluice-Decision: ${admittedHeader(context)}\r\n\r\n`);
  const screen = options.verifyTunnelSni ? (bytes: Buffer) => tunnelSniVerdict(bytes, destination.host, destination.kind === 'name') : undefined;
  relay(deps, context, client, upstream, {
    idleTimeoutMs: options.idleTimeoutMs,
    firstBytes: head,
    screenTimeoutMs: options.headerTimeoutMs,
    ...(screen === undefined ? {} : { screen }),
  });
}
