// /v1/learned: what Learn mode let through (viewer), filtered by agent and time, and the rules it
// suggests; clearing an agent's records (admin) is audited under the token's name.
import { learnedClearedEntry, type AuditLog } from '../../audit/kinds.js';
import { proposeRules, type BlockedCheck } from '../../policy/learn-proposal.js';
import type { LearnEntry, LearnStore } from '../../policy/learn-store.js';
import { requiredQuery } from '../fields.js';
import { apiError, type Route } from '../router.js';

/** The entries for `?agent=` and `?since=`, or ADMIN_BAD_REQUEST for an unreadable time. */
function selected(learn: LearnStore, query: URLSearchParams): LearnEntry[] {
  const agent = query.get('agent');
  const sinceText = query.get('since');
  const since = sinceText === null ? null : Date.parse(sinceText);
  if (since !== null && Number.isNaN(since)) throw apiError('ADMIN_BAD_REQUEST', 'since: expected an ISO 8601 time');
  return learn.entries().filter((entry) => (agent === null || entry.agent === agent) && (since === null || entry.lastSeen.getTime() >= since));
}

/** `blockedBy` names the blocklist entry listing a host, so the proposal leaves it out with a warning. */
export function learnedRoutes(learn: LearnStore, audit: AuditLog, blockedBy: BlockedCheck): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/learned',
      role: 'viewer',
      handle: async (request) => {
        const entries = selected(learn, request.query).map((entry) => ({ agent: entry.agent, host: entry.host, port: entry.port, count: entry.count, first_seen: entry.firstSeen.toISOString(), last_seen: entry.lastSeen.toISOString() }));
        return { status: 200, body: { entries } };
      },
    },
    {
      method: 'GET',
      path: '/v1/learned/proposal',
      role: 'viewer',
      handle: async (request) => {
        const proposal = proposeRules(selected(learn, request.query), blockedBy);
        return { status: 200, body: { yaml: proposal.text, left_out: proposal.blocked } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/learned',
      role: 'admin',
      handle: async (request) => {
        const agent = requiredQuery(request.query, 'agent');
        const removed = learn.clear(agent);
        await audit.append(learnedClearedEntry(agent, removed, request.caller.name));
        await learn.flush();
        return { status: 200, body: { agent, removed } };
      },
    },
  ];
}
