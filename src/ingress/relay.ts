// What CONNECT tunnels and HTTP upgrades share once past the HTTP head: admit and dial with
// failures answered on the raw socket, then a byte relay that records one close record.
import type { Socket } from 'node:net';
import { dial, errorCodeFor } from '../connect/index.js';
import { isSluiceError, SluiceError, type ErrorCode } from '../errors.js';
import type { RequestContext } from './context.js';
import { admit, recordClose, RefusedError, type AdmissionRequest, type PipelineDeps } from './pipeline.js';
import { refuseOnSocket } from './respond.js';

/** The dialled upstream socket, or undefined once the client has been answered with a refusal. */
export async function admitAndDial(deps: PipelineDeps, context: RequestContext, client: Socket, request: AdmissionRequest): Promise<Socket | undefined> {
  // Bytes the agent sends early (a ClientHello after CONNECT) wait in the socket until the
  // decision; nothing is read ahead of it.
  client.pause();
  try {
    const vetted = await admit(deps, context, request);
    const dialled = await dial(vetted, { timeoutMs: deps.connectTimeoutMs });
    context.upstream = `${dialled.address}:${dialled.port}`;
    if (client.destroyed) {
      dialled.socket.destroy();
      recordClose(deps, context, 'UPSTREAM_RESET');
      return undefined;
    }
    return dialled.socket;
  } catch (error) {
    if (error instanceof RefusedError) {
      refuseOnSocket(client, error.refusal);
      return undefined;
    }
    const code = isSluiceError(error) ? error.code : errorCodeFor(error);
    refuseOnSocket(client, { code, message: new SluiceError(code).message, rule: null, requestId: context.id, verdict: 'error' });
    recordClose(deps, context, code);
    return undefined;
  }
}

/** Splices both directions with backpressure; whichever side ends, errs or idles closes both. */
export function relay(deps: PipelineDeps, context: RequestContext, client: Socket, upstream: Socket, idleTimeoutMs: number): void {
  const active = deps.metrics.connectionsActive.labels({ kind: context.kind });
  active.inc();
  let outcome: ErrorCode | 'ok' = 'ok';
  let closed = false;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    active.dec();
    context.bytesUp = upstream.bytesWritten;
    context.bytesDown = upstream.bytesRead;
    client.destroy();
    upstream.destroy();
    recordClose(deps, context, outcome);
  };
  // The upstream socket's idle timer sees traffic in both directions; the HTTP server's timer on
  // the client socket no longer applies once it carries raw bytes.
  upstream.setTimeout(idleTimeoutMs, () => {
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
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
}
