// /v1/approvals: list (viewer), grant (approver; admin to pass a blocklist) and revoke (approver)
// time-boxed approvals. The store audits and persists; this checks what a caller may ask for.
import { approvalFields } from '../../audit/kinds.js';
import { normaliseHost } from '../../destination.js';
import { isSluiceError } from '../../errors.js';
import type { ApprovalStore } from '../../policy/approval-store.js';
import { optionalPort, optionalString, requiredString } from '../fields.js';
import { roleAllows } from '../roles.js';
import { apiError, type Route } from '../router.js';

export interface ApprovalRouteDeps {
  readonly store: ApprovalStore;
  readonly maxTtlMs: number;
  /** whether an agent of that name is configured (or is `anonymous`) */
  readonly knownAgent: (name: string) => boolean;
  /** the blocklist source listing the host now, or null */
  readonly blocklistedBy: (host: string) => string | null;
  /** an access request by id, so an approval can grant exactly what an agent asked for */
  readonly accessRequest: (id: string) => { readonly agent: string; readonly host: string; readonly port: number } | undefined;
}

/** An approval as the API and the CLI show it (the fields of its audit records). */
export const approvalView = approvalFields;

function hostOf(raw: string): string {
  try {
    // Bracketed IPv6, as users type it in URLs, is accepted too.
    return normaliseHost(raw.replace(/^\[(.*)\]$/, '$1')).host;
  } catch (error) {
    throw apiError('ADMIN_BAD_REQUEST', `host: ${isSluiceError(error) ? error.message : String(error)}`);
  }
}

/** What an approval grants: named in the body, or taken from the access request it answers. */
function destinationOf(body: Readonly<Record<string, unknown>>, deps: ApprovalRouteDeps): { agent: string; host: string; port: number | null } {
  const requestId = optionalString(body, 'request');
  if (requestId !== null) {
    if (body['agent'] !== undefined || body['host'] !== undefined || body['port'] !== undefined) throw apiError('ADMIN_BAD_REQUEST', 'request: give either request or agent/host/port, not both');
    const asked = deps.accessRequest(requestId);
    if (asked === undefined) throw apiError('ADMIN_NOT_FOUND', `no access request ${requestId}`);
    return { agent: asked.agent, host: asked.host, port: asked.port };
  }
  const agent = requiredString(body, 'agent');
  if (!deps.knownAgent(agent)) throw apiError('ADMIN_BAD_REQUEST', `agent: no agent named "${agent}" in the config`);
  return { agent, host: hostOf(requiredString(body, 'host')), port: optionalPort(body['port'], 'port') };
}

export function approvalRoutes(deps: ApprovalRouteDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/approvals',
      role: 'viewer',
      handle: async () => ({ status: 200, body: { approvals: deps.store.list().map(approvalView) } }),
    },
    {
      method: 'POST',
      path: '/v1/approvals',
      role: 'approver',
      handle: async (request) => {
        const body = await request.body();
        const { agent, host, port } = destinationOf(body, deps);
        const ttlMs = body['ttl_ms'];
        if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1000) throw apiError('ADMIN_BAD_REQUEST', 'ttl_ms: expected a whole number of milliseconds, at least 1000');
        if (ttlMs > deps.maxTtlMs) throw apiError('ADMIN_BAD_REQUEST', `ttl_ms: ${ttlMs} is above approvals.max_ttl_ms (${deps.maxTtlMs})`);
        const reason = requiredString(body, 'reason');
        const ticket = optionalString(body, 'ticket');
        const overrideBlocklist = body['override_blocklist'] === true;
        if (overrideBlocklist && !roleAllows(request.caller.role, 'admin')) throw apiError('ADMIN_FORBIDDEN', 'override_blocklist needs the admin role');
        const listedBy = deps.blocklistedBy(host);
        const approval = await deps.store.create({ agent, host, port, approver: request.caller.name, reason, ticket, overrideBlocklist, ttlMs });
        const warnings = listedBy !== null && !overrideBlocklist ? [`${host} is on the blocklist ${listedBy}: this approval does not pass it`] : [];
        return { status: 201, body: { approval: approvalView(approval), warnings } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/approvals/{id}',
      role: 'approver',
      handle: async (request) => {
        const id = request.params['id'] ?? '';
        const approval = await deps.store.revoke(id, request.caller.name);
        if (approval === undefined) throw apiError('ADMIN_NOT_FOUND', `no approval ${id} in force`);
        return { status: 200, body: { revoked: approvalView(approval) } };
      },
    },
  ];
}
