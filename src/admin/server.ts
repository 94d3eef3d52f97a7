// The admin listener: open probes (/metrics, /healthz, /readyz, /status/NAME), the admin page's files
// and the /v1 API, where every call needs a Bearer token whose role covers the route. Nothing is
// trusted for arriving from loopback: agents on this host reach loopback too.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isSluiceError, SluiceError } from '../errors.js';
import type { Metrics } from '../obs/metrics.js';
import type { AuthFailures } from './auth-failures.js';
import type { AdminPage } from './page.js';
import { roleAllows } from './roles.js';
import { apiError, callerOf, readJsonBody, sendError, sendJson, type Router } from './router.js';
import type { TokenRegistry } from './tokens.js';

export interface AdminOptions {
  readonly metrics: Metrics;
  /** ready = every component needed to take decisions is loaded and the audit chain is open */
  readonly ready: () => boolean;
  /** JSON status documents served at /status/NAME (e.g. blocklist sources) */
  readonly status?: Readonly<Record<string, () => unknown>>;
  readonly router: Router;
  /** the admin page at / (static; its data calls go through /v1 like any other client's) */
  readonly page?: AdminPage;
  readonly tokens: TokenRegistry;
  readonly failures: AuthFailures;
  readonly onError: (error: unknown) => void;
  /** when set, /metrics needs `Authorization: Bearer T` with sha256(T) equal to this (admin.metrics_token_sha256) */
  readonly metricsTokenSha256?: string | undefined;
}

// RFC 6750 §2.1: the credentials are `Bearer` and a token68.
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;
const CHALLENGE = { 'www-authenticate': 'Bearer realm="sluice-admin"' };

/** A scraper's token is compared by hash in constant time, like every other token Sluice holds. */
function scrapeAllowed(expectedSha256: string | undefined, request: IncomingMessage): boolean {
  if (expectedSha256 === undefined) return true;
  const presented = BEARER.exec(request.headers.authorization ?? '')?.[1];
  if (presented === undefined) return false;
  return timingSafeEqual(createHash('sha256').update(presented).digest(), Buffer.from(expectedSha256, 'hex'));
}

function probe(options: AdminOptions, path: string, request: IncomingMessage, response: ServerResponse): boolean {
  switch (path) {
    case '/metrics':
      if (!scrapeAllowed(options.metricsTokenSha256, request)) {
        response.writeHead(401, { ...CHALLENGE, 'content-type': 'text/plain' }).end('send Authorization: Bearer with the metrics token\n');
        return true;
      }
      options.metrics.exposition().then(
        (text) => response.writeHead(200, { 'content-type': options.metrics.registry.contentType }).end(text),
        () => response.writeHead(500).end(),
      );
      return true;
    case '/healthz':
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return true;
    case '/readyz': {
      const ready = options.ready();
      response.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
      return true;
    }
    default: {
      const name = path.startsWith('/status/') ? path.slice('/status/'.length) : '';
      const report = options.status !== undefined && Object.hasOwn(options.status, name) ? options.status[name] : undefined;
      if (report === undefined) return false;
      response.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(report(), null, 2)}\n`);
      return true;
    }
  }
}

async function api(options: AdminOptions, request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
  const peer = request.socket.remoteAddress ?? 'unknown';
  if (options.failures.blocked(peer)) throw apiError('ADMIN_RATE_LIMITED', 'too many failed logins from this address; try again later');
  // Who is calling is settled before anything else, so an unauthenticated caller cannot even learn
  // which routes exist; the role is checked before the body is read.
  const presented = BEARER.exec(request.headers.authorization ?? '')?.[1];
  if (presented === undefined) {
    options.failures.record(peer, 'missing_token');
    throw apiError('ADMIN_UNAUTHORIZED', 'send Authorization: Bearer TOKEN');
  }
  const token = await options.tokens.lookup(presented);
  if (token === undefined) {
    options.failures.record(peer, 'unknown_token');
    throw apiError('ADMIN_UNAUTHORIZED', 'token not recognised');
  }
  const match = options.router.match(request.method ?? '', url.pathname);
  if (match.kind === 'none') throw apiError('ADMIN_NOT_FOUND', url.pathname);
  if (match.kind === 'method') {
    response.setHeader('allow', match.allowed.join(', '));
    throw apiError('ADMIN_METHOD_NOT_ALLOWED', `${request.method ?? ''} ${url.pathname}`);
  }
  if (!roleAllows(token.role, match.route.role)) {
    options.failures.record(peer, 'insufficient_role');
    throw apiError('ADMIN_FORBIDDEN', `${match.route.method} ${match.route.path} needs the ${match.route.role} role; token "${token.name}" is ${token.role}`);
  }
  const reply = await match.route.handle({ params: match.params, query: url.searchParams, caller: callerOf(token), body: () => readJsonBody(request) });
  sendJson(response, reply.status, reply.body);
}

export function createAdminServer(options: AdminOptions): Server {
  return createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://admin.invalid');
    if (!url.pathname.startsWith('/v1/')) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (options.page?.serve(url.pathname, response) === true) return;
      if (!probe(options, url.pathname, request, response)) response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    api(options, request, response, url).catch((error: unknown) => {
      if (!isSluiceError(error)) options.onError(error);
      const failure = isSluiceError(error) ? error : new SluiceError('INTERNAL');
      if (response.headersSent) {
        response.destroy();
        return;
      }
      // An unread body must not be taken for the next request on this connection.
      response.shouldKeepAlive = false;
      sendError(response, failure, failure.code === 'ADMIN_UNAUTHORIZED' ? CHALLENGE : {});
    });
  });
}
