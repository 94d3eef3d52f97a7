// Starts the transparent listeners the nft guard redirects agents' TCP 80 and 443 to; the
// composition root calls this with the same pipeline the explicit proxy uses.
import type { ConfigFile } from '../../config/schema.js';
import type { RedirectedIdentity } from '../../identity/redirected.js';
import type { UpstreamPools } from '../../connect/index.js';
import type { PipelineDeps } from '../pipeline.js';
import { listenOnAll, redirectTargets } from '../redirect-targets.js';
import { closeNow } from '../shutdown.js';
import { createTransparentHttpServer } from './http-listener.js';
import type { TlsInterceptor } from '../intercept.js';
import { createTransparentTlsServer } from './tls-listener.js';

export interface RunningTransparent {
  readonly httpPort: number;
  readonly tlsPort: number;
  close(): Promise<void>;
}

/** Redirected sockets still name the dialled address as their peer: `deps.identity` must look owners up through it. */
export async function startTransparentListeners(
  deps: PipelineDeps & { readonly identity: RedirectedIdentity },
  config: ConfigFile,
  pools: UpstreamPools,
  interceptor?: TlsInterceptor,
): Promise<RunningTransparent> {
  const http = await listenOnAll(redirectTargets(config.listen.transparent_http), () => createTransparentHttpServer({ ...deps, ingress: 'transparent_http' }, config.limits, pools));
  const tls = await listenOnAll(redirectTargets(config.listen.transparent_tls), () =>
    createTransparentTlsServer({ ...deps, ingress: 'transparent_tls' }, {
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
