// The byte relay every raw-socket path ends in (CONNECT tunnels, upgrades, transparent TLS): both
// directions spliced with backpressure, the CONNECT SNI screen first, and one close record.
import type { Socket } from 'node:net';
import { tunnelScreenEntry } from '../audit/kinds.js';
import { errorCodeFor, upstreamReaderOf } from '../connect/index.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { TunnelSniVerdict } from './tls/tunnel-sni.js';
import { ALERT_ACCESS_DENIED, sendTlsAlert } from './tls/alert.js';
import type { RequestContext } from './context.js';
import { countDecision, recordClose, type PipelineDeps } from './pipeline.js';

export interface RelayOptions {
  readonly idleTimeoutMs: number;
  /** bytes the agent sent along with its request head, forwarded first */
  readonly firstBytes: Buffer;
  /** judges the agent's first bytes before any reach upstream (the CONNECT SNI check) */
  readonly screen?: (bytes: Buffer) => TunnelSniVerdict;
  /** how long a started but incomplete ClientHello may take */
  readonly screenTimeoutMs?: number;
}

// A ClientHello fits in one 16 KiB record in practice; past that it is not one we will judge.
const MAX_SCREENED_BYTES = 64 * 1024;

/**
 * Counts an exchange between `client` and `upstream` as active and returns its one way to end:
 * take the byte counts off the upstream socket, close both (the client's socket is kept when a
 * TLS alert is still being flushed on it) and write the close record. Later calls do nothing.
 */
export function trackExchange(deps: PipelineDeps, context: RequestContext, client: Socket, upstream: Socket): (outcome: ErrorCode | 'ok', keepClient?: boolean) => void {
  const active = deps.metrics.connectionsActive.labels({ kind: context.kind });
  active.inc();
  let closed = false;
  // Revoking or expiring the approval that admitted this exchange ends it at once.
  const approval = context.decision?.approval;
  let untrack: (() => void) | undefined;
  const close = (outcome: ErrorCode | 'ok', keepClient = false): void => {
    if (closed) return;
    closed = true;
    untrack?.();
    active.dec();
    context.bytesUp = upstream.bytesWritten;
    context.bytesDown = upstream.bytesRead;
    if (!keepClient) client.destroy();
    upstream.destroy();
    recordClose(deps, context, outcome);
  };
  if (approval !== undefined && deps.approved !== undefined) untrack = deps.approved.track(approval, () => close('APPROVAL_ENDED'));
  return close;
}

/** Splices both directions with backpressure; whichever side ends, errs or idles closes both. */
export function relay(deps: PipelineDeps, context: RequestContext, client: Socket, upstream: Socket, options: RelayOptions): void {
  const close = trackExchange(deps, context, client, upstream);
  let outcome: ErrorCode | 'ok' = 'ok';
  let alerting = false;
  // A refused tunnel's alert is still being flushed; sendTlsAlert destroys the socket after it.
  const finish = (): void => close(outcome, alerting);
  // The upstream socket's idle timer sees traffic in both directions; the HTTP server's timer on
  // the client socket no longer applies once it carries raw bytes.
  upstream.setTimeout(options.idleTimeoutMs, () => {
    outcome = 'UPSTREAM_TIMEOUT';
    finish();
  });
  client.setTimeout(0);
  upstream.on('error', (error) => {
    outcome = errorCodeFor(error);
    finish();
  });
  client.on('error', finish);
  upstream.on('close', finish);
  client.on('close', finish);
  // Server-first protocols (SSH, SMTP banners) must flow while the agent's side is screened.
  const reader = upstreamReaderOf(upstream);
  if (reader === undefined) upstream.pipe(client);
  else reader.forwardTo(client);
  const open = (held: Buffer): void => {
    countDecision(deps, context);
    if (held.length > 0) upstream.write(held);
    client.pipe(upstream);
  };
  const screen = options.screen;
  if (screen === undefined) {
    open(options.firstBytes);
    return;
  }
  let held = options.firstBytes;
  let timer: NodeJS.Timeout | undefined;
  const refuse = (error: SluiceError): void => {
    outcome = error.code;
    // The refusal is this tunnel's one counted decision: the admission before it was held back.
    countDecision(deps, context, { verdict: 'deny', reason: error.code.toLowerCase() });
    deps.log.warn({ request_id: context.id, code: error.code, detail: error.message }, 'tunnel refused after CONNECT');
    deps.audit
      .append(tunnelScreenEntry(context.id, error))
      .catch((auditError: unknown) => deps.log.error({ err: auditError, request_id: context.id }, 'audit append failed'));
    alerting = true;
    sendTlsAlert(client, ALERT_ACCESS_DENIED);
    upstream.destroy();
  };
  const judge = (): boolean => {
    const verdict = held.length > MAX_SCREENED_BYTES ? { kind: 'deny' as const, error: new SluiceError('CLIENT_HELLO_INVALID', 'first bytes too large') } : screen(held);
    if (verdict.kind === 'wait') {
      // Only a started ClientHello is timed: an agent waiting for a server banner sends nothing.
      if (held.length > 0 && timer === undefined) {
        timer = setTimeout(() => {
          stopWaiting();
          refuse(new SluiceError('CLIENT_HELLO_INVALID', 'incomplete ClientHello'));
        }, options.screenTimeoutMs ?? 10_000);
      }
      return false;
    }
    stopWaiting();
    if (verdict.kind === 'deny') refuse(verdict.error);
    else open(held);
    return true;
  };
  const onData = (chunk: Buffer): void => {
    held = Buffer.concat([held, chunk]);
    judge();
  };
  // An agent that half-closes before sending anything passes its end on, so the tunnel winds down
  // instead of idling in CLOSE-WAIT; one that stops inside a ClientHello is refused.
  const onEnd = (): void => {
    stopWaiting();
    if (held.length > 0) refuse(new SluiceError('CLIENT_HELLO_INVALID', 'agent closed inside its first bytes'));
    else upstream.end();
  };
  const stopWaiting = (): void => {
    clearTimeout(timer);
    client.off('data', onData);
    client.off('end', onEnd);
  };
  if (!judge()) {
    client.on('data', onData);
    client.once('end', onEnd);
    client.resume();
  }
}
