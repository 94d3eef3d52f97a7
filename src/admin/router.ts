// The admin API's routing table: each route names its method, path template, the least role that
// may call it and its handler, so a new route is one entry and the OpenAPI check sees them all.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CATALOGUE, SluiceError, type ErrorCode } from '../errors.js';
import type { Role } from './roles.js';
import type { TokenEntry } from './tokens.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Caller {
  /** the token's name: what audit records name as the approver or operator */
  readonly name: string;
  readonly role: Role;
}

export interface RouteRequest {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly caller: Caller;
  /** the JSON body, read only once auth and role have passed; an object or an ADMIN_BAD_REQUEST */
  body(): Promise<Readonly<Record<string, unknown>>>;
}

export interface Reply {
  readonly status: number;
  readonly body: unknown;
}

export interface Route {
  readonly method: HttpMethod;
  /** `/v1/approvals/{id}`: a `{name}` segment matches one non-empty path segment */
  readonly path: string;
  readonly role: Role;
  handle(request: RouteRequest): Promise<Reply>;
}

const MAX_BODY_BYTES = 64 * 1024;

/** An admin request refused with a catalogue code (ADMIN_*), in the proxy's error shape. */
export function apiError(code: ErrorCode, detail?: string): SluiceError {
  return new SluiceError(code, detail);
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
}

export function sendError(response: ServerResponse, error: SluiceError, headers: Readonly<Record<string, string>> = {}): void {
  sendJson(response, ERROR_CATALOGUE[error.code].status, { error: { code: error.code, message: error.message, rule: null, request_id: randomUUID() } }, headers);
}

export async function readJsonBody(request: IncomingMessage): Promise<Readonly<Record<string, unknown>>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw apiError('ADMIN_BAD_REQUEST', `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw apiError('ADMIN_BAD_REQUEST', 'body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw apiError('ADMIN_BAD_REQUEST', 'body must be a JSON object');
  return value as Record<string, unknown>;
}

interface Compiled {
  readonly route: Route;
  readonly segments: readonly string[];
}

export type Match = { readonly kind: 'route'; readonly route: Route; readonly params: Record<string, string> } | { readonly kind: 'method'; readonly allowed: readonly HttpMethod[] } | { readonly kind: 'none' };

export class Router {
  readonly #routes: Compiled[] = [];

  add(...routes: readonly Route[]): this {
    for (const route of routes) {
      if (this.#routes.some((other) => other.route.method === route.method && other.route.path === route.path)) throw new Error(`admin route ${route.method} ${route.path} registered twice`);
      this.#routes.push({ route, segments: route.path.split('/').slice(1) });
    }
    return this;
  }

  get routes(): readonly Route[] {
    return this.#routes.map((entry) => entry.route);
  }

  match(method: string, path: string): Match {
    const parts = path.split('/').slice(1);
    const allowed: HttpMethod[] = [];
    for (const { route, segments } of this.#routes) {
      const params = matchSegments(segments, parts);
      if (params === null) continue;
      if (route.method === method) return { kind: 'route', route, params };
      allowed.push(route.method);
    }
    return allowed.length > 0 ? { kind: 'method', allowed } : { kind: 'none' };
  }
}

function matchSegments(template: readonly string[], parts: readonly string[]): Record<string, string> | null {
  if (template.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (const [index, segment] of template.entries()) {
    const part = parts[index] ?? '';
    if (segment.startsWith('{') && segment.endsWith('}')) {
      if (part === '') return null;
      let decoded: string;
      try {
        decoded = decodeURIComponent(part);
      } catch {
        return null;
      }
      params[segment.slice(1, -1)] = decoded;
    } else if (segment !== part) {
      return null;
    }
  }
  return params;
}

/** The caller as routes see it: a token entry reduced to who and what role. */
export function callerOf(token: TokenEntry): Caller {
  return { name: token.name, role: token.role };
}
