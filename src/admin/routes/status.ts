// GET /v1/whoami and GET /v1/status (viewer): who the token is, and what is in force now (mode per
// agent, rules, bundle version, blocklist ages), so the admin page can shape itself without guessing.
import type { Mode } from '../../agent.js';
import type { SourceStatus } from '../../policy/blocklist/manager.js';
import type { Route } from '../router.js';

export interface StatusSources {
  readonly defaultMode: Mode;
  /** every configured agent's mode in force, overrides included */
  readonly agentModes: () => Readonly<Record<string, Mode>>;
  readonly rules: () => { readonly count: number; readonly bundleVersion: number | null };
  readonly blocklists: () => readonly SourceStatus[];
  readonly now: () => number;
}

export function statusRoutes(sources: StatusSources): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/whoami',
      role: 'viewer',
      handle: async (request) => ({ status: 200, body: { name: request.caller.name, role: request.caller.role } }),
    },
    {
      method: 'GET',
      path: '/v1/status',
      role: 'viewer',
      handle: async () => {
        const now = sources.now();
        const rules = sources.rules();
        return {
          status: 200,
          body: {
            mode: sources.defaultMode,
            agents: Object.entries(sources.agentModes()).map(([name, mode]) => ({ name, mode })),
            rules: { count: rules.count, bundle_version: rules.bundleVersion },
            blocklists: sources.blocklists().map((list) => ({
              source: list.source,
              entries: list.entries,
              fetched_at: list.fetchedAt === null ? null : new Date(list.fetchedAt).toISOString(),
              // Whole seconds since the copy in force was downloaded: what "is this list stale?" needs.
              age_seconds: list.fetchedAt === null ? null : Math.max(0, Math.floor((now - list.fetchedAt) / 1000)),
              last_outcome: list.lastOutcome,
            })),
          },
        };
      },
    },
  ];
}
