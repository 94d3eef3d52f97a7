// The admin listener: Prometheus metrics, liveness and readiness. It is never reachable through
// the proxy port, and the nftables guard later keeps agents away from it.
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface AdminOptions {
  readonly metrics: Metrics;
  /** ready = every component needed to take decisions is loaded and the audit chain is open */
  readonly ready: () => boolean;
  /** JSON status documents served at /status/NAME (e.g. blocklist sources) */
  readonly status?: Readonly<Record<string, () => unknown>>;
}

export function createAdminServer(options: AdminOptions): Server {
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (path) {
      case '/metrics':
        options.metrics.registry.metrics().then(
          (text) => response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text),
          () => response.writeHead(500).end(),
        );
        return;
      case '/healthz':
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const ready = options.ready();
        response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
        return;
      }
      default: {
        const name = path?.startsWith('/status/') === true ? path.slice('/status/'.length) : '';
        const report = options.status !== undefined && Object.hasOwn(options.status, name) ? options.status[name] : undefined;
        if (report !== undefined) {
          response.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(report(), null, 2)}\n`);
          return;
        }
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    }
  });
}
