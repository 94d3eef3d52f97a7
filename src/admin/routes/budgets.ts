// /v1/budgets: every inference token budget as the running process holds it (limits, used,
// reserved, remaining, when each UTC window resets), and why inference is refused if it is.
import type { BudgetReport } from '../../meter/index.js';
import type { Route } from '../router.js';

export interface BudgetsView {
  readonly budgets: readonly BudgetReport[];
  /** why every inference call is refused now (the usage journal is unusable, Redis unreachable), else null */
  readonly store_failure: string | null;
}

export function budgetRoutes(report: () => Promise<BudgetsView>): Route[] {
  return [{ method: 'GET', path: '/v1/budgets', role: 'viewer', handle: async () => ({ status: 200, body: { ...(await report()) } }) }];
}
