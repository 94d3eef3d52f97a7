// Absolute-form HTTP requests (`GET http://host/path`): admit, then stream the request body
// upstream and the response back through a keep-alive pool, never buffering either.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorCodeFor, type UpstreamPools } from '../connect/index.js';
import { SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection } from '../identity/identify.js';
import { readProxyCredential } from '../identity/proxy-credentials.js';
import { newContext, pathWithoutQuery } from './context.js';
import { parseAbsoluteTarget, type AbsoluteTarget } from './request-target.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './hop-by-hop.js';
import { admit, recordBadRequest, recordClose, RefusedError, type PipelineDeps } from './pipeline.js';
import { admittedHeader, refusalFor, refuseOnResponse } from './respond.js';
import { checkRequestHead, hasBody } from './strict.js';

// Expect is answered here, after the decision (RFC 9110 §10.1.1), not passed on.
const DROP_UPSTREAM = new Set(['expect']);

export async function handleForward(
  deps: PipelineDeps,
  pools: UpstreamPools,
  request: IncomingMessage,
  response: ServerResponse,
  connection: ClientConnection,
  expectsContinue: boolean,
): Promise<void> {
  const socket = request.socket;
  const readAtStart = socket.bytesRead;
  const writtenAtStart = socket.bytesWritten;
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
  let vetted;
  try {
    vetted = await admit(deps, context, {
      credential: readProxyCredential(request.headers['proxy-authorization']),
      connection,
      destination: target.destination,
      path: pathWithoutQuery(target.path),
      traceparent: request.headers.traceparent,
      client: response,
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
  if (expectsContinue) response.writeContinue();
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
    await pool.stream(
      {
        path: target.path,
        method: request.method ?? 'GET',
        headers: forwardRequestHeaders(request.rawHeaders, target.authority, DROP_UPSTREAM),
        body: hasBody(request) ? request : null,
        signal: abort.signal,
      },
      ({ statusCode, headers }) => {
        const flat = forwardResponseHeaders(headers);
        flat.push('sluice-decision', sluiceHeader);
        response.writeHead(statusCode, flat);
        return response;
      },
    );
  } catch (error) {
    outcome = approvalEnded ? 'APPROVAL_ENDED' : abort.signal.aborted ? 'UPSTREAM_RESET' : errorCodeFor(error);
    if (!response.headersSent && !abort.signal.aborted) {
      refuseOnResponse(response, refusalFor(context.id, outcome));
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
