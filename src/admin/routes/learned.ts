// /v1/learned: what Learn mode let through (viewer), filtered by agent and time; clearing an
// agent's records (admin) is audited under the token's name.
import { learnedClearedEntry, type AuditLog } from '../../audit/kinds.js';
import type { LearnStore } from '../../policy/learn-store.js';
import { requiredQuery } from '../fields.js';
import { apiError, type Route } from '../router.js';

export function learnedRoutes(learn: LearnStore, audit: AuditLog): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/learned',
      role: 'viewer',
      handle: async (request) => {
        const agent = request.query.get('agent');
        const sinceText = request.query.get('since');
        const since = sinceText === null ? null : Date.parse(sinceText);
        if (since !== null && Number.isNaN(since)) throw apiError('ADMIN_BAD_REQUEST', 'since: expected an ISO 8601 time');
        const entries = learn
          .entries()
          .filter((entry) => (agent === null || entry.agent === agent) && (since === null || entry.lastSeen.getTime() >= since))
          .map((entry) => ({ agent: entry.agent, host: entry.host, port: entry.port, count: entry.count, first_seen: entry.firstSeen.toISOString(), last_seen: entry.lastSeen.toISOString() }));
        return { status: 200, body: { entries } };
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
