// Sends a forbidden destination to a running Sluice four ways (curl absolute-form, curl CONNECT,
// raw absolute-form, raw CONNECT) and reads back what proves the refusal: reply, audit, metrics.
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { curl } from './curl.js';
import { rawExchange } from './raw-http.js';

export type ProbeRoute = 'curl-forward' | 'curl-tunnel' | 'raw-forward' | 'raw-tunnel';

export const ALL_ROUTES: readonly ProbeRoute[] = ['curl-forward', 'curl-tunnel', 'raw-forward', 'raw-tunnel'];
export const CURL_ROUTES: readonly ProbeRoute[] = ['curl-forward', 'curl-tunnel'];

export interface ProbeReply {
  readonly status: number;
  /** every header block received, CONNECT reply included */
  readonly headers: string;
  /** undefined where the client never shows it (curl drops a refused CONNECT's body) */
  readonly body: string | undefined;
}

/** One request for `http://HOST:PORT/probe` through the proxy, the host written exactly as given. */
export async function probe(proxyUrl: string, route: ProbeRoute, host: string, port: number): Promise<ProbeReply> {
  const authority = `${host}:${port}`;
  if (route === 'curl-forward' || route === 'curl-tunnel') {
    // -g: brackets are IPv6 literals here, not curl URL globs.
    const result = await curl(['-g', '-x', proxyUrl, ...(route === 'curl-tunnel' ? ['-p'] : []), `http://${authority}/probe`]);
    return { status: result.status, headers: result.headers, body: route === 'curl-forward' || result.status === 200 ? result.body : undefined };
  }
  const head = route === 'raw-forward' ? `GET http://${authority}/probe HTTP/1.1\r\n` : `CONNECT ${authority} HTTP/1.1\r\n`;
  const reply = await rawExchange(Number(new URL(proxyUrl).port), [`${head}Host: ${authority}\r\nConnection: close\r\n\r\n`], { waitMs: 3000 });
  const split = reply.text.indexOf('\r\n\r\n');
  return { status: reply.status, headers: split < 0 ? reply.text : reply.text.slice(0, split), body: split < 0 ? undefined : reply.text.slice(split + 4) };
}

/**
 * Runs `run` over `items` with at most `width` in flight, results in input order. After a failure
 * no new item starts, and it rejects only once the running ones are done, so no probe of a failed
 * test leaks into the next one.
 */
export async function inFlight<T, R>(items: readonly T[], width: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  const failures: unknown[] = [];
  const queue = items.entries();
  const worker = async (): Promise<void> => {
    for (const [index, item] of queue) {
      if (failures.length > 0) return;
      try {
        results[index] = await run(item);
      } catch (error) {
        failures.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  if (failures.length > 0) throw failures[0];
  return results;
}

export type AuditLine = Readonly<Record<string, unknown>>;

/** Every record of the chain at `STATE_DIR/audit.jsonl`, grouped by request id. */
export async function auditByRequest(stateDir: string): Promise<Map<string, AuditLine[]>> {
  const text = await readFile(join(stateDir, 'audit.jsonl'), 'utf8');
  const byRequest = new Map<string, AuditLine[]>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const record = JSON.parse(line) as AuditLine;
    if (typeof record.request_id !== 'string') continue;
    byRequest.set(record.request_id, [...(byRequest.get(record.request_id) ?? []), record]);
  }
  return byRequest;
}

const FORBIDDEN_SERIES = /^sluice_forbidden_destinations_total\{class="([a-z_]+)"\} ([0-9]+)$/gm;

/** `sluice_forbidden_destinations_total` by class, as the admin listener exports it. */
export async function forbiddenCounts(adminUrl: string): Promise<Map<string, number>> {
  const response = await fetch(`${adminUrl}/metrics`);
  const text = await response.text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(FORBIDDEN_SERIES)) counts.set(match[1] ?? '', Number(match[2]));
  return counts;
}

export interface CatchAllListener {
  readonly port: number;
  /** the local address of every connection accepted, in order: any dial shows up here */
  readonly accepted: string[];
  /** the local address each request arrived on (a pooled connection carries several) */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * An HTTP server on [::] (dual stack) that answers 200 with the address it was reached on. In a
 * namespace where every address is local it accepts a connection to any unicast address.
 */
export async function startCatchAll(): Promise<CatchAllListener> {
  const accepted: string[] = [];
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.socket.localAddress ?? '');
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(request.socket.localAddress ?? '');
  });
  server.on('connection', (socket) => accepted.push(socket.localAddress ?? ''));
  server.listen({ port: 0, host: '::', ipv6Only: false });
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    accepted,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
