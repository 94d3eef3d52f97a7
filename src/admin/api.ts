// Assembles the admin API from what the running process owns: the token registry, the failed-login
// limiter and one router with every route. A later route is one more line in `routes` below.
import { budgetRoutes, type BudgetsView } from './routes/budgets.js';
import { adminAuthFailuresEntry, adminTokensEntry, type AuditEntry, type AuditLog } from '../audit/kinds.js';
import type { Clock } from '../clock.js';
import type { ConfigFile } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import type { AccessRequests } from '../policy/access-requests.js';
import type { ApprovalStore } from '../policy/approval-store.js';
import type { BlockedCheck } from '../policy/learn-proposal.js';
import type { LearnStore } from '../policy/learn-store.js';
import { AuthFailures } from './auth-failures.js';
import { Router } from './router.js';
import { agentRoutes, type ModeControl } from './routes/agents.js';
import { approvalRoutes, type ApprovalRouteDeps } from './routes/approvals.js';
import { explainRoutes, type ExplainDeps } from './routes/explain.js';
import { learnedRoutes } from './routes/learned.js';
import { requestRoutes } from './routes/requests.js';
import { statusRoutes, type StatusSources } from './routes/status.js';
import { tokenRoutes } from './routes/tokens.js';
import { tokenFile, TokenRegistry } from './tokens.js';

export interface AdminApiDeps {
  readonly config: Pick<ConfigFile, 'admin' | 'approvals'>;
  readonly stateDir: string;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** appends without waiting (summaries, token pickups): a failure is logged, never thrown at a caller */
  readonly record: (entry: AuditEntry) => void;
  readonly log: Logger;
  readonly approvals: ApprovalStore;
  /** access requests recorded for denials no rule decided; an approval may name one */
  readonly requests: AccessRequests;
  readonly learn: LearnStore;
  readonly modes: ModeControl;
  readonly knownAgent: ApprovalRouteDeps['knownAgent'];
  readonly blocklistedBy: ApprovalRouteDeps['blocklistedBy'];
  readonly explain: Omit<ExplainDeps, 'now'>;
  /** the inference budgets as metering holds them now */
  readonly budgets: () => Promise<BudgetsView>;
  /** why a learned host is left out of a proposal (the blocklist entry listing it), or null */
  readonly proposalBlockedBy: BlockedCheck;
  readonly status: Omit<StatusSources, 'now'>;
}

export interface AdminApi {
  readonly router: Router;
  readonly tokens: TokenRegistry;
  readonly failures: AuthFailures;
}

export async function createAdminApi(deps: AdminApiDeps): Promise<AdminApi> {
  const { clock, log, record } = deps;
  const tokens = new TokenRegistry(tokenFile(deps.stateDir), deps.config.admin.tokens, (change) => {
    if ('error' in change) log.error({ err: change.error }, 'admin token file refused; the tokens in force are unchanged');
    record(adminTokensEntry(change));
  });
  await tokens.refresh();
  const failures = new AuthFailures({
    limit: deps.config.admin.max_failed_logins,
    intervalMs: 60_000,
    schedule: (callback, delayMs) => ({ cancel: clock.after(delayMs, callback) }),
    now: () => clock.now(),
    report: (summary) => record(adminAuthFailuresEntry(summary)),
  });
  const now = (): number => clock.now();
  const routes = [
    ...tokenRoutes(tokens, now),
    ...approvalRoutes({
      store: deps.approvals,
      maxTtlMs: deps.config.approvals.max_ttl_ms,
      knownAgent: deps.knownAgent,
      blocklistedBy: deps.blocklistedBy,
      accessRequest: (id) => deps.requests.get(id),
    }),
    ...requestRoutes(deps.requests),
    ...learnedRoutes(deps.learn, deps.audit, deps.proposalBlockedBy),
    ...explainRoutes({ ...deps.explain, now }),
    ...agentRoutes(deps.modes, deps.audit),
    ...budgetRoutes(deps.budgets),
    ...statusRoutes({ ...deps.status, now }),
  ];
  return { router: new Router().add(...routes), tokens, failures };
}
