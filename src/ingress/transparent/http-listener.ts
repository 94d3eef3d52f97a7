// The listener for TCP 80 redirected by the guard: the explicit proxy's HTTP server, with each
// origin-form request turned into absolute-form from its Host header before the pipeline sees it.
import type { IncomingMessage, Server } from 'node:http';
import type { ConfigFile } from '../../config/schema.js';
import { createProxyServer } from '../server.js';
import { parseHostHeader, formatAuthority } from '../destination.js';
import type { PipelineDeps } from '../pipeline.js';
import type { UpstreamPools } from '../upstream-pools.js';

/**
 * Rewrites `GET /path` + `Host: name` into `GET http://name/path`, so policy decides on the Host
 * and connect resolves and vets that name, never the address the agent dialled. A missing or bad
 * Host is left alone and refused as origin-form by the forwarder.
 */
function toAbsoluteForm(request: IncomingMessage): void {
  const url = request.url ?? '';
  const host = request.headers.host;
  if (!url.startsWith('/') || host === undefined) return;
  try {
    request.url = `http://${formatAuthority(parseHostHeader(host, 80))}${url}`;
  } catch {
    // the forwarder answers 400 for origin-form; nothing else to do here
  }
}

export function createTransparentHttpServer(deps: PipelineDeps, limits: ConfigFile['limits'], pools: UpstreamPools): Server {
  const server = createProxyServer(deps, limits, pools);
  // Listeners run in registration order: prepending makes the rewrite happen before dispatch.
  for (const event of ['request', 'checkContinue', 'upgrade'] as const) server.prependListener(event, toAbsoluteForm);
  // CONNECT makes no sense on a redirected port 80.
  server.removeAllListeners('connect');
  return server;
}
