// Forwarded HTTP requests: absolute-form ones from the proxy listener and the decrypted ones of an
// intercepted TLS session share one path: admit, then stream the body upstream and the response
// back through a keep-alive pool. Only inference calls are buffered, to be metered.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { errorCodeFor, type UpstreamPools } from '../connect/index.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential, type PresentedCredential } from '../identity/proxy-credentials.js';
import type { MeteredCall } from '../meter/call.js';
import { newContext, pathWithoutQuery, type RequestContext } from './context.js';
import { parseAbsoluteTarget, type AbsoluteTarget } from './request-target.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './hop-by-hop.js';
import { admit, recordBadRequest, recordClose, RefusedError, type PipelineDeps } from './pipeline.js';
import { admittedHeader, refusalFor, refuseOnResponse } from './respond.js';
import { checkRequestHead, hasBody } from './strict.js';
import { readCapped } from './read-capped.js';

// Expect is answered here, after the decision (RFC 9110 §10.1.1), not passed on.
const DROP_UPSTREAM = new Set(['expect']);
// A metered body is sent as the buffer Sluice read (and perhaps rewrote): its length is Sluice's.
const DROP_METERED = new Set(['expect', 'content-length']);

/** One request on its way upstream, whichever listener it arrived on. */
export interface ForwardExchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  readonly context: RequestContext;
  readonly target: AbsoluteTarget;
  readonly credential: PresentedCredential;
  readonly connection: ClientConnection;
  readonly expectsContinue: boolean;
  /** decrypted from an intercepted session, whose tunnel decision is durable (see AdmissionRequest) */
  readonly insideDurableSession: boolean;
}

export async function handleForward(
  deps: PipelineDeps,
  pools: UpstreamPools,
  request: IncomingMessage,
  response: ServerResponse,
  connection: ClientConnection,
  expectsContinue: boolean,
): Promise<void> {
  const context = newContext('forward', deps.ingress, `${connection.pair.remoteAddress}:${connection.pair.remotePort}`, request.method ?? 'GET');
  let target: AbsoluteTarget;
  try {
    checkRequestHead(request);
    const url = request.url ?? '';
    if (url.startsWith('/') || url === '*') throw new SluiceError('ORIGIN_FORM', 'send absolute-form requests (http://host/path) or use CONNECT');
    target = parseAbsoluteTarget(url);
  } catch (error) {
    refuseOnResponse(response, await recordBadRequest(deps, context, error));
    return;
  }
  const credential = readProxyCredential(request.headers['proxy-authorization']);
  await forwardRequest(deps, pools, { request, response, context, target, credential, connection, expectsContinue, insideDurableSession: false });
}

/** Admits one parsed request and relays it; every outcome ends in the exchange's close record. */
export async function forwardRequest(deps: PipelineDeps, pools: UpstreamPools, exchange: ForwardExchange): Promise<void> {
  const { request, response, context, target } = exchange;
  const socket = request.socket;
  const readAtStart = socket.bytesRead;
  const writtenAtStart = socket.bytesWritten;
  let vetted;
  try {
    vetted = await admit(deps, context, {
      credential: exchange.credential,
      connection: exchange.connection,
      destination: target.destination,
      path: pathWithoutQuery(target.path),
      traceparent: request.headers.traceparent,
      client: response,
      insideDurableSession: exchange.insideDurableSession,
    });
  } catch (error) {
    if (error instanceof RefusedError) refuseOnResponse(response, error.refusal);
    else refuseOnResponse(response, refusalFor(context.id, 'INTERNAL'));
    return;
  }
  if (response.headersSent || response.writableEnded) {
    // The body's framing turned out broken while the decision was taken: already refused.
    recordClose(deps, context, 'BAD_FRAMING');
    return;
  }
  if (exchange.expectsContinue) response.writeContinue();
  const metered =
    context.agent !== undefined && deps.meter?.isInferenceHost(target.destination.host) === true
      ? deps.meter.open({ requestId: context.id, agent: context.agent, host: target.destination.host, method: request.method ?? 'GET', path: target.path })
      : null;
  const { pool, upstream } = pools.get(vetted, target.scheme);
  const abort = new AbortController();
  const onClientGone = (): void => {
    if (!response.writableFinished) abort.abort();
  };
  response.once('close', onClientGone);
  // An exchange a revoked or expired approval let through stops mid-stream, like its tunnels.
  let approvalEnded = false;
  const approval = context.decision?.approval;
  const untrack =
    approval === undefined || deps.approved === undefined
      ? undefined
      : deps.approved.track(approval, () => {
          approvalEnded = true;
          abort.abort();
          response.destroy();
        });
  let outcome: ErrorCode | 'ok' = 'ok';
  const sluiceHeader = admittedHeader(context);
  const active = deps.metrics.connectionsActive.labels({ kind: 'forward' });
  active.inc();
  try {
    let body: IncomingMessage | Buffer | null = hasBody(request) ? request : null;
    let headers: string[];
    if (metered === null) {
      headers = forwardRequestHeaders(request.rawHeaders, target.authority, DROP_UPSTREAM);
    } else {
      const read = await readCapped(request, metered.maxBodyBytes);
      if (read === null) throw new SluiceError('INFERENCE_BODY_TOO_LARGE', `over ${metered.maxBodyBytes} bytes`);
      const verdict = await metered.admit(read);
      if (verdict.kind === 'refuse') {
        outcome = verdict.code;
        response.writeHead(verdict.status, [...verdict.headers.flat(), 'sluice-decision', sluiceHeader]);
        response.end(verdict.body);
        return;
      }
      headers = forwardRequestHeaders(request.rawHeaders, target.authority, DROP_METERED);
      if (body !== null) {
        body = verdict.body;
        headers.push('content-length', String(verdict.body.length));
      }
    }
    await pool.stream(
      { path: target.path, method: request.method ?? 'GET', headers, body, signal: abort.signal },
      ({ statusCode, headers: upstreamHeaders }) => {
        const flat = forwardResponseHeaders(upstreamHeaders);
        flat.push('sluice-decision', sluiceHeader);
        if (metered === null) {
          response.writeHead(statusCode, flat);
          return response;
        }
        return tapped(metered, statusCode, upstreamHeaders['content-type'], flat, response);
      },
    );
    metered?.finish('complete');
  } catch (error) {
    metered?.finish('aborted');
    outcome = approvalEnded ? 'APPROVAL_ENDED' : abort.signal.aborted ? 'UPSTREAM_RESET' : error instanceof SluiceError ? error.code : errorCodeFor(error);
    if (!response.headersSent && !abort.signal.aborted) {
      refuseOnResponse(response, refusalFor(context.id, error instanceof SluiceError ? error : outcome));
    } else {
      response.destroy();
    }
  } finally {
    untrack?.();
    active.dec();
    response.off('close', onClientGone);
    const reached = upstream();
    if (reached !== '') context.upstream = reached;
    context.bytesUp = socket.bytesRead - readAtStart;
    context.bytesDown = socket.bytesWritten - writtenAtStart;
    recordClose(deps, context, outcome);
  }
}

/** The response head goes out now; its body flows through the meter's tap on the way. */
function tapped(metered: MeteredCall, statusCode: number, contentType: string | string[] | undefined, flat: string[], response: ServerResponse): Writable {
  const { tap, rewrites } = metered.respond(statusCode, typeof contentType === 'string' ? contentType : undefined);
  const head = rewrites ? withoutContentLength(flat) : flat;
  response.writeHead(statusCode, head);
  tap.pipe(response);
  return tap;
}

function withoutContentLength(flat: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if ((flat[i] ?? '').toLowerCase() !== 'content-length') out.push(flat[i] ?? '', flat[i + 1] ?? '');
  }
  return out;
}
