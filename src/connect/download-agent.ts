// The undici dispatcher for Sluice's own downloads (bundles, OCI blobs, blocklist feeds): each
// origin goes through the parent proxy connect.upstream_proxy routes it to, or direct.
import { Agent, Pool, ProxyAgent, type Dispatcher } from 'undici';
import type { ParentProxies } from './parent-proxy.js';

export interface DownloadAgentOptions {
  /** connect, headers and body timeouts */
  readonly timeoutMs?: number | undefined;
  /** extra trusted CA certificates (PEM) for the origins, beside the system store */
  readonly ca?: string | undefined;
}

export function downloadAgent(parents: ParentProxies | undefined, options: DownloadAgentOptions = {}): Dispatcher {
  const { timeoutMs, ca } = options;
  const timeouts = timeoutMs === undefined ? {} : { headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
  const connect = { ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }), ...(ca === undefined ? {} : { ca }) };
  return new Agent({
    ...timeouts,
    connect,
    // The Agent keeps one dispatcher per origin; a routed origin's is a ProxyAgent, which sends
    // https as CONNECT and, like the proxy's forward path, plain http in absolute-form.
    factory: (origin, poolOptions) => {
      const proxy = parents?.routeForUrl(origin);
      if (proxy === undefined) return new Pool(origin, poolOptions);
      const token = proxy.authorization();
      return new ProxyAgent({
        uri: `http://${proxy.label}`,
        ...(token === undefined ? {} : { token }),
        proxyTunnel: false,
        ...timeouts,
        requestTls: connect,
        proxyTls: timeoutMs === undefined ? {} : { timeout: timeoutMs },
      });
    },
  });
}
