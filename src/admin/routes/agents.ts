// PUT /v1/agents/{name}/mode (admin): switches one agent between Learn and Strict while Sluice
// runs; audited before it takes effect, and kept across restarts until the config changes it.
import type { Mode } from '../../agent.js';
import { agentModeEntry, type AuditLog } from '../../audit/kinds.js';
import { apiError, type Route } from '../router.js';

export interface ModeControl {
  knows(agent: string): boolean;
  set(agent: string, mode: Mode): Promise<void>;
}

export function agentRoutes(modes: ModeControl, audit: AuditLog): Route[] {
  return [
    {
      method: 'PUT',
      path: '/v1/agents/{name}/mode',
      role: 'admin',
      handle: async (request) => {
        const agent = request.params['name'] ?? '';
        if (!modes.knows(agent)) throw apiError('ADMIN_NOT_FOUND', `no agent named "${agent}" in the config`);
        const mode = (await request.body())['mode'];
        if (mode !== 'learn' && mode !== 'strict') throw apiError('ADMIN_BAD_REQUEST', 'mode: expected learn or strict');
        await audit.append(agentModeEntry(agent, mode, request.caller.name));
        await modes.set(agent, mode);
        return { status: 200, body: { agent, mode } };
      },
    },
  ];
}
