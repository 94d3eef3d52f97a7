// The listener for TCP 80 redirected by the guard: the explicit proxy's HTTP server, with each
// origin-form request turned into absolute-form from its Host header before the pipeline sees it.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConfigFile } from '../../config/schema.js';
import { isSluiceError, SluiceError } from '../../errors.js';
import { newContext } from '../context.js';
import { formatAuthority } from '../../destination.js';
import { parseHostHeader } from '../request-target.js';
import { recordBadRequest, type PipelineDeps } from '../pipeline.js';
import { refuseOnResponse, refuseOnSocket } from '../respond.js';
import { createProxyServer } from '../server.js';
import type { UpstreamPools } from '../../connect/index.js';

/**
 * Rewrites `GET /path` + `Host: name` into `GET http://name/path`, so policy decides on the Host
 * and connect resolves and vets that name, never the address the agent dialled. Returns the
 * error when the Host header is missing or invalid (RFC 9112 3.2: a request must carry one).
 */
function toAbsoluteForm(request: IncomingMessage): SluiceError | null {
  const url = request.url ?? '';
  if (!url.startsWith('/')) return null;
  const host = request.headers.host;
  if (host === undefined || host === '') return new SluiceError('BAD_HOST', 'a redirected request needs a Host header');
  try {
    request.url = `http://${formatAuthority(parseHostHeader(host, 80))}${url}`;
    return null;
  } catch (error) {
    return isSluiceError(error) ? error : new SluiceError('BAD_HOST');
  }
}

type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;
type UpgradeListener = (request: IncomingMessage, socket: Socket, head: Buffer) => void;

export function createTransparentHttpServer(deps: PipelineDeps, limits: ConfigFile['limits'], pools: UpstreamPools): Server {
  // CONNECT never reaches a transparent listener (agents there dial origins), so no tunnel screen.
  const server = createProxyServer(deps, limits, pools, false);
  const refusal = (request: IncomingMessage, error: SluiceError) =>
    recordBadRequest(deps, newContext('forward', deps.ingress, `${request.socket.remoteAddress ?? '?'}:${request.socket.remotePort ?? 0}`, request.method ?? '-'), error);
  // Wrap the proxy's own handlers: each request is rewritten first, or refused with its reason.
  for (const event of ['request', 'checkContinue'] as const) {
    const handlers = server.listeners(event) as RequestListener[];
    server.removeAllListeners(event);
    server.on(event, (request: IncomingMessage, response: ServerResponse) => {
      const error = toAbsoluteForm(request);
      if (error === null) for (const handler of handlers) handler(request, response);
      else refusal(request, error).then((refused) => refuseOnResponse(response, refused), () => response.destroy());
    });
  }
  const upgrades = server.listeners('upgrade') as UpgradeListener[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const error = toAbsoluteForm(request);
    if (error === null) for (const handler of upgrades) handler(request, socket, head);
    else refusal(request, error).then((refused) => refuseOnSocket(socket, refused), () => socket.destroy());
  });
  // CONNECT makes no sense on a redirected port 80: with no listener, Node closes the connection.
  server.removeAllListeners('connect');
  return server;
}
