// Failure responses an agent can understand: the reason in the status line (CONNECT clients drop
// bodies), a Sluice-Decision header, and for HTTP a JSON body naming code, rule and request id.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERROR_CATALOGUE, SluiceError, type ErrorCode } from '../errors.js';
import type { RequestContext } from './context.js';

export interface Refusal {
  readonly code: ErrorCode;
  readonly message: string;
  readonly rule: string | null;
  readonly requestId: string;
  readonly verdict: 'deny' | 'error';
  /** when trying again may succeed (a per-agent limit): sent as Retry-After (RFC 9110 §10.2.3) */
  readonly retryAfterSeconds?: number;
}

/**
 * The one way a Refusal is made. A bare code carries the catalogue's message; an error carries its
 * own, detail included, so only what was meant for the agent reaches it.
 */
export function refusalFor(requestId: string, failure: ErrorCode | SluiceError, verdict: Refusal['verdict'] = 'error', rule: string | null = null): Refusal {
  const error = typeof failure === 'string' ? new SluiceError(failure) : failure;
  return { code: error.code, message: error.message, rule, requestId, verdict };
}

/** How a refusal reaches an agent on a raw socket: an HTTP response, or a TLS alert. */
export type RefusalMedium = (socket: Socket, refusal: Refusal) => void;

function decisionHeader(verdict: string, reason: string, rule: string | null, requestId: string): string {
  return `${verdict}; reason=${reason}; rule=${rule ?? '-'}; request-id=${requestId}`;
}

/** The header on an admitted request's reply: the decision that let it through. */
export function admittedHeader(context: RequestContext): string {
  const decision = context.decision;
  return decisionHeader(decision?.verdict ?? 'allow', decision?.reason ?? '-', decision?.ruleId ?? null, context.id);
}

function statusLineReason(refusal: Refusal): string {
  // A reason phrase is visible-ASCII text (RFC 9112 §4); keep it to the code and rule.
  const rule = refusal.rule === null ? '' : ` (rule ${refusal.rule})`;
  const verb = refusal.verdict === 'deny' ? 'Denied' : 'Refused';
  return `${verb} by Sluice: ${refusal.code.toLowerCase()}${rule}`.replace(/[^\x20-\x7e]/g, '?');
}

function body(refusal: Refusal): string {
  return JSON.stringify({
    error: { code: refusal.code, message: refusal.message, rule: refusal.rule, request_id: refusal.requestId },
  });
}

function headerPairs(refusal: Refusal, payload: string): [string, string][] {
  const pairs: [string, string][] = [
    ['Sluice-Decision', decisionHeader(refusal.verdict, refusal.code.toLowerCase(), refusal.rule, refusal.requestId)],
    ['Content-Type', 'application/json'],
    ['Content-Length', String(Buffer.byteLength(payload))],
    ['Connection', 'close'],
  ];
  if (refusal.retryAfterSeconds !== undefined) pairs.push(['Retry-After', String(refusal.retryAfterSeconds)]);
  if (refusal.code === 'AUTH_INVALID') pairs.push(['Proxy-Authenticate', 'Bearer realm="sluice", Basic realm="sluice"']);
  return pairs;
}

/** For sockets with no response object (CONNECT, upgrade, parse errors): raw bytes, then close. */
export function refuseOnSocket(socket: Duplex, refusal: Refusal): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = ERROR_CATALOGUE[refusal.code].status;
  const payload = body(refusal);
  const head = headerPairs(refusal, payload)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${statusLineReason(refusal)}\r\n${head}\r\n${payload}`);
  socket.once('finish', () => socket.destroy());
}

export function refuseOnResponse(response: ServerResponse, refusal: Refusal): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const payload = body(refusal);
  response.shouldKeepAlive = false;
  response.writeHead(ERROR_CATALOGUE[refusal.code].status, statusLineReason(refusal), headerPairs(refusal, payload));
  response.end(payload);
}
