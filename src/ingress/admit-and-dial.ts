// The one sequence every raw-socket path runs before bytes flow: admit, dial the vetted address,
// record where it went, check the agent is still there. The reply medium is the caller's choice.
import type { Socket } from 'node:net';
import { addressWithPort, dial, errorCodeFor } from '../connect/index.js';
import type { RequestContext } from './context.js';
import { admit, recordClose, RefusedError, type AdmissionRequest, type PipelineDeps } from './pipeline.js';
import { refusalFor, type RefusalMedium } from './respond.js';

/**
 * The dialled upstream socket, or undefined once the client has been refused through `medium`
 * (an HTTP response for CONNECT and upgrades, a TLS alert on the transparent listener) or is gone.
 * Every failure after the decision record also gets its close record here.
 */
export async function admitAndDial(deps: PipelineDeps, context: RequestContext, client: Socket, request: AdmissionRequest, medium: RefusalMedium): Promise<Socket | undefined> {
  // Bytes the agent sends early (a ClientHello after CONNECT) wait in the socket until the
  // decision; nothing is read ahead of it.
  client.pause();
  try {
    const vetted = await admit(deps, context, request);
    const dialled = await dial(vetted, { timeoutMs: deps.connectTimeoutMs, forRelay: true });
    deps.metrics.upstreamTcpConnectSeconds.observe(dialled.connectMs / 1000);
    context.upstream = addressWithPort(dialled.address, dialled.port);
    if (client.destroyed) {
      dialled.socket.destroy();
      recordClose(deps, context, 'UPSTREAM_RESET');
      return undefined;
    }
    return dialled.socket;
  } catch (error) {
    if (error instanceof RefusedError) {
      medium(client, error.refusal);
      return undefined;
    }
    const code = errorCodeFor(error);
    // The agent sees the code only; the operator gets what failed (a parent proxy's status, the errno).
    deps.log.warn({ request_id: context.id, code, detail: error instanceof Error ? error.message : String(error) }, 'upstream connection failed');
    medium(client, refusalFor(context.id, code));
    recordClose(deps, context, code);
    return undefined;
  }
}
