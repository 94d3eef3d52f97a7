// A local HTTP server that serves blocklist feeds the way real feed hosts do (ETag,
// Last-Modified, 304 on a matching If-None-Match), and can be told to fail or go away.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** `chunked` sends the body in two writes with no Content-Length, as a streaming server would. */
export type FeedRoute = { readonly body: string; readonly chunked?: boolean } | { readonly status: number };

export interface FeedServer {
  url(path: string): string;
  set(path: string, route: FeedRoute): void;
  readonly requests: Array<{ readonly path: string; readonly headers: IncomingHttpHeaders }>;
  close(): Promise<void>;
}

const LAST_MODIFIED = 'Mon, 23 Nov 2026 12:00:00 GMT';

export async function startFeedServer(): Promise<FeedServer> {
  const routes = new Map<string, FeedRoute>();
  const requests: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const server = createServer((request, response) => {
    const path = request.url ?? '/';
    requests.push({ path, headers: request.headers });
    const route = routes.get(path);
    if (route === undefined || 'status' in route) {
      response.writeHead(route === undefined ? 404 : route.status).end();
      return;
    }
    const etag = `"${createHash('sha256').update(route.body).digest('hex').slice(0, 16)}"`;
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, { etag }).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain', etag, 'last-modified': LAST_MODIFIED });
    if (route.chunked === true) {
      const half = Math.floor(route.body.length / 2);
      response.write(route.body.slice(0, half));
      response.end(route.body.slice(half));
    } else {
      response.end(route.body);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    set: (path, route) => void routes.set(path, route),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
