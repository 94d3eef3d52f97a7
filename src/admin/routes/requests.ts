// /v1/requests: what agents in Strict mode asked for and were refused (or are held waiting on),
// listed for viewers and denied by approvers; granting one is POST /v1/approvals with its id.
import type { AccessRequest, AccessRequests, AccessRequestStatus } from '../../policy/access-requests.js';
import { apiError, type Route } from '../router.js';

const STATUSES: readonly AccessRequestStatus[] = ['pending', 'denied'];

/** An access request as the API and the CLI show it. */
export function accessRequestView(request: AccessRequest): Record<string, unknown> {
  return {
    id: request.id,
    agent: request.agent,
    host: request.host,
    port: request.port,
    count: request.count,
    first_seen: request.firstSeen.toISOString(),
    last_seen: request.lastSeen.toISOString(),
    status: request.status,
    denied_by: request.deniedBy,
  };
}

function statusFilter(raw: string | null): AccessRequestStatus | undefined {
  if (raw === null) return undefined;
  const status = STATUSES.find((known) => known === raw);
  if (status === undefined) throw apiError('ADMIN_BAD_REQUEST', `status: expected one of ${STATUSES.join(', ')}`);
  return status;
}

export function requestRoutes(requests: AccessRequests): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/requests',
      role: 'viewer',
      handle: async (request) => {
        const agent = request.query.get('agent');
        const status = statusFilter(request.query.get('status'));
        const listed = requests.list({ ...(agent === null ? {} : { agent }), ...(status === undefined ? {} : { status }) });
        return { status: 200, body: { requests: listed.map(accessRequestView) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/requests/{id}/deny',
      role: 'approver',
      handle: async (request) => {
        const id = request.params['id'] ?? '';
        const denied = requests.deny(id, request.caller.name);
        if (denied === undefined) throw apiError('ADMIN_NOT_FOUND', `no access request ${id}`);
        return { status: 200, body: { request: accessRequestView(denied) } };
      },
    },
  ];
}
