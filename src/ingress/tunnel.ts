// CONNECT host:port (RFC 9110 §9.3.6): admit, dial the vetted address, answer 200 only then,
// and relay bytes both ways until either side closes or goes idle.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential } from '../identity/proxy-credentials.js';
import { newContext } from './context.js';
import type { Destination } from '../destination.js';
import { parseConnectTarget } from './request-target.js';
import { admit, recordBadRequest, RefusedError, type PipelineDeps } from './pipeline.js';
import type { TlsInterceptor } from './intercept.js';
import { admitAndDial } from './admit-and-dial.js';
import { relay } from './relay.js';
import { admittedHeader, refusalFor, refuseOnSocket } from './respond.js';
import { checkRequestHead } from './strict.js';
import { tunnelSniVerdict } from './tls/tunnel-sni.js';

export interface TunnelOptions {
  readonly idleTimeoutMs: number;
  readonly headerTimeoutMs: number;
  /** refuse a tunnel whose ClientHello names another host than the CONNECT target */
  readonly verifyTunnelSni: boolean;
  /** terminates TLS to inference hosts so their calls are metered */
  readonly interceptor?: TlsInterceptor;
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
  const interceptor = options.interceptor;
  if (interceptor?.wants(destination) === true) {
    // Nothing is dialled for an intercepted tunnel: each decrypted request is admitted and sent on
    // its own. Its decision is counted once the ClientHello is judged, as for screened tunnels.
    client.pause();
    try {
      await admit(deps, context, { credential, connection, destination, countLater: true, traceparent: request.headers.traceparent });
    } catch (error) {
      refuseOnSocket(client, error instanceof RefusedError ? error.refusal : refusalFor(context.id, 'INTERNAL'));
      return;
    }
    client.write(`HTTP/1.1 200 Connection Established\r\nSluice-Decision: ${admittedHeader(context)}\r\n\r\n`);
    return interceptor.takeTunnel(client, head, { context, destination, credential, connection });
  }
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
