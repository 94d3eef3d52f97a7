// Starts the transparent listeners the nft guard redirects agents' TCP 80 and 443 to; the
// composition root calls this with the same pipeline the explicit proxy uses.
import { closeNow } from '../shutdown.js';
import type { ConfigFile } from '../../config/schema.js';
import type { PipelineDeps } from '../pipeline.js';
import type { UpstreamPools } from '../upstream-pools.js';
import { createTransparentHttpServer } from './http-listener.js';
import { listenOnAll, redirectTargets } from './listen.js';
import { RedirectedIdentity } from './redirected-owner.js';
import { createTransparentTlsServer, type TlsInterceptor } from './tls-listener.js';

export { parseClientHello, type ClientHello, type ClientHelloParse } from './client-hello.js';
export { RedirectedIdentity } from './redirected-owner.js';
export { redirectTargets, listenOnAll } from './listen.js';
export type { TlsInterceptor } from './tls-listener.js';

export interface RunningTransparent {
  readonly httpPort: number;
  readonly tlsPort: number;
  close(): Promise<void>;
}

export async function startTransparentListeners(deps: PipelineDeps, config: ConfigFile, pools: UpstreamPools, interceptor?: TlsInterceptor): Promise<RunningTransparent> {
  // Redirected sockets still name the dialled address as their peer: identity needs its own lookup.
  const redirected: PipelineDeps = { ...deps, identity: new RedirectedIdentity(config) };
  const http = await listenOnAll(redirectTargets(config.listen.transparent_http), () => createTransparentHttpServer(redirected, config.limits, pools));
  const tls = await listenOnAll(redirectTargets(config.listen.transparent_tls), () =>
    createTransparentTlsServer(redirected, {
      headerTimeoutMs: config.limits.header_timeout_ms,
      idleTimeoutMs: config.limits.idle_timeout_ms,
      maxConnections: config.limits.max_connections,
      ...(interceptor === undefined ? {} : { interceptor }),
    }),
  );
  return {
    httpPort: http.port,
    tlsPort: tls.port,
    close: () => Promise.all([...http.servers, ...tls.servers].map(closeNow)).then(() => undefined),
  };
}
export { tunnelSniVerdict, type TunnelSniVerdict } from './tunnel-sni.js';
