// Every kind of record Sluice appends to the audit chain, as one discriminated union, and the
// builders that make each from what a stage knows. A new kind extends the union, AUDIT_FIELDS and docs/audit.md.
import type { AuditRecord } from './record.js';

export type DecisionEntry = {
  readonly kind: 'decision';
  readonly request_id: string;
  readonly request_kind: string;
  readonly ingress: string;
  readonly client: string;
  readonly agent: string | null;
  readonly via: string | null;
  readonly method: string;
  readonly host: string | null;
  readonly port: number | null;
  readonly path: string | null;
  readonly verdict: string;
  readonly reason: string;
  readonly rule: string | null;
  readonly mode: string | null;
  readonly bundle_version: number | null;
  readonly blocklist_source?: string;
  readonly blocklist_entry?: string;
  readonly shadow_version?: number;
  readonly shadow_would_deny?: boolean;
  readonly shadow_reason?: string;
  readonly shadow_rule?: string | null;
  readonly address_class?: string;
  readonly address?: string;
  readonly addresses?: readonly string[];
  readonly parent_proxy?: string;
  readonly approval?: string;
  readonly trace_id?: string;
};

export type CloseEntry = {
  readonly kind: 'close';
  readonly request_id: string;
  /** repeated from the decision so a SIEM needs no join to say who moved the bytes */
  readonly agent: string | null;
  readonly host: string | null;
  readonly port: number | null;
  readonly upstream: string | null;
  readonly bytes_up: number;
  readonly bytes_down: number;
  readonly duration_ms: number;
  readonly outcome: string;
};

type RequestProblem<K extends string> = { readonly kind: K; readonly request_id: string; readonly detail: string };
export type BadRequestEntry = RequestProblem<'bad_request'> & { readonly client: string; readonly method: string; readonly code: string };
export type TunnelScreenEntry = RequestProblem<'tunnel_screen'> & { readonly verdict: 'deny'; readonly reason: string };

export type DnsEntry = {
  readonly kind: 'dns';
  readonly ingress: 'dns';
  readonly agent: string | null;
  readonly via: string | null;
  readonly client: string;
  readonly transport: string;
  readonly name: string;
  readonly type: string;
  readonly outcome: string;
  readonly detail: string | null;
  readonly removed: number;
};

export type DnsSummaryRow = { readonly agent: string | null; readonly peer: string; readonly outcome: string; readonly count: number };
export type DnsSummaryEntry = { readonly kind: 'dns_summary'; readonly since: string; readonly counts: readonly DnsSummaryRow[]; readonly overflow: number };

export type AgentLimitSummaryRow = { readonly agent: string; readonly limit: string; readonly count: number };
export type AgentLimitSummaryEntry = { readonly kind: 'agent_limit_summary'; readonly since: string; readonly counts: readonly AgentLimitSummaryRow[] };

export type AccessRequestEntry = {
  readonly kind: 'access_request';
  readonly event: 'created' | 'denied' | 'cleared' | 'expired';
  readonly id: string;
  readonly agent: string;
  readonly host: string;
  readonly port: number;
  readonly count: number;
  readonly first_seen: string;
  readonly last_seen: string;
  readonly by: string | null;
};

export type StartEntry = {
  readonly kind: 'start';
  readonly config: string | null;
  readonly mode: string;
  readonly rules: number;
  readonly rule_files: readonly string[];
  readonly bundle_version: number | null;
  readonly proxy: string;
};

export type ReloadEntry =
  | { readonly kind: 'reload'; readonly outcome: 'accepted'; readonly rules: number; readonly rule_files: readonly string[] }
  | { readonly kind: 'reload'; readonly outcome: 'rejected'; readonly errors: readonly string[] };

export type StopEntry = { readonly kind: 'stop' };

/** workers: N — a proxy worker ended while Sluice ran (a crash, a kill); the primary starts another. */
export type WorkerExitEntry = {
  readonly kind: 'worker_exit';
  readonly worker: number;
  readonly pid: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly replaced_by: number;
};

export type BundleVerificationEntry = {
  readonly kind: 'bundle_verification';
  readonly outcome: string;
  readonly stage: string;
  readonly origin: string;
  readonly version: number | null;
  readonly signer: string | null;
  readonly detail: string;
  readonly at: string;
};

export type BundlePolicyEntry = { readonly kind: 'bundle_policy'; readonly policy: string; readonly version: number | null; readonly stale: boolean; readonly reason: string | null };
export type BundleShadowEntry = { readonly kind: 'bundle_shadow'; readonly version: number | null };

export type AuditRecoveryEntry =
  | { readonly kind: 'audit_recovery'; readonly reason: string; readonly torn_bytes: number; readonly torn_sha256: string; readonly torn_file: string }
  | { readonly kind: 'audit_recovery'; readonly reason: string; readonly failed_at: string; readonly refused_appends: number; readonly truncated_bytes: number };

export type AdminAuthFailuresEntry = {
  readonly kind: 'admin_auth_failures';
  readonly since: string;
  readonly counts: readonly { readonly peer: string; readonly reason: string; readonly count: number }[];
  readonly overflow: number;
};

export type AdminTokensEntry =
  | { readonly kind: 'admin_tokens'; readonly outcome: 'loaded'; readonly tokens: readonly { readonly name: string; readonly role: string }[] }
  | { readonly kind: 'admin_tokens'; readonly outcome: 'rejected'; readonly error: string };

export type ApprovalEntry = {
  readonly kind: 'approval';
  readonly action: 'create' | 'first_use' | 'expire' | 'revoke';
  readonly id: string;
  readonly agent: string;
  readonly host: string;
  readonly port: number | null;
  readonly approver: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly created: string;
  readonly expires: string;
  readonly override_blocklist: boolean;
  /** who revoked it (a token name); present on revoke only */
  readonly revoked_by?: string;
  /** the request that first used it; present on first_use only */
  readonly request_id?: string;
  /** live tunnels cut when it ended; present on revoke and expire */
  readonly connections_cut?: number;
};

export type AgentModeEntry = { readonly kind: 'agent_mode'; readonly agent: string; readonly mode: string; readonly by: string };
export type LearnedClearedEntry = { readonly kind: 'learned_cleared'; readonly agent: string; readonly removed: number; readonly by: string };

/** What made the writer sign the head: see docs/audit.md "Signed checkpoints". */
export type CheckpointTrigger = 'start' | 'records' | 'interval' | 'shutdown' | 'rotation' | 'retention' | 'key_rotation';

export type CheckpointEntry = {
  readonly kind: 'checkpoint';
  readonly trigger: CheckpointTrigger;
  readonly head_seq: number;
  readonly head_hash: string;
  readonly time: string;
  /** base64 raw Ed25519 public key that signed */
  readonly key: string;
  /** a successor key, announced under the current one (trigger key_rotation) */
  readonly next_key?: string;
  readonly signature: string;
};

/** A rotated audit file deleted by retention, named with the chain span it held. */
export type AuditRetentionEntry = {
  readonly kind: 'audit_retention';
  readonly file: string;
  readonly first_seq: number;
  readonly last_seq: number;
  readonly last_hash: string;
  readonly bytes: number;
  readonly reason: 'max_age' | 'max_total_bytes';
};

/** One metered inference call, settled or refused by its budget (docs/inference.md). */
export type InferenceEntry = {
  readonly kind: 'inference';
  readonly request_id: string;
  readonly agent: string;
  readonly api: string;
  readonly model: string;
  /** settled: usage counted; over_budget: refused before dispatch; cut: stopped past its reservation; aborted: agent or upstream gone */
  readonly outcome: 'settled' | 'over_budget' | 'cut' | 'aborted' | 'store_unusable' | 'store_unreachable';
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly estimated: boolean;
  /** tokens reserved before dispatch; 0 when refused */
  readonly reserved: number;
  /** the output bound Sluice injected or lowered, per choice; null when the agent's stood */
  readonly clamped_to: number | null;
  /** over_budget: `hourly`, `daily`, `monthly` or `per_request`, and whose budget */
  readonly limit: string | null;
  readonly budget: string | null;
};

export type AuditEntry =
  | DecisionEntry
  | InferenceEntry
  | CloseEntry
  | BadRequestEntry
  | TunnelScreenEntry
  | DnsEntry
  | DnsSummaryEntry
  | AgentLimitSummaryEntry
  | AccessRequestEntry
  | StartEntry
  | ReloadEntry
  | StopEntry
  | WorkerExitEntry
  | BundleVerificationEntry
  | BundlePolicyEntry
  | BundleShadowEntry
  | AuditRecoveryEntry
  | AdminAuthFailuresEntry
  | AdminTokensEntry
  | ApprovalEntry
  | AgentModeEntry
  | LearnedClearedEntry
  | CheckpointEntry
  | AuditRetentionEntry;

export type AuditKind = AuditEntry['kind'];

/** Every field a kind may carry (in any of its variants), for docs/audit.md and its test. */
export const AUDIT_FIELDS = {
  decision: ['request_id', 'request_kind', 'ingress', 'client', 'agent', 'via', 'method', 'host', 'port', 'path', 'verdict', 'reason', 'rule', 'mode', 'bundle_version', 'blocklist_source', 'blocklist_entry', 'shadow_version', 'shadow_would_deny', 'shadow_reason', 'shadow_rule', 'address_class', 'address', 'addresses', 'parent_proxy', 'approval', 'trace_id'],
  close: ['request_id', 'agent', 'host', 'port', 'upstream', 'bytes_up', 'bytes_down', 'duration_ms', 'outcome'],
  bad_request: ['request_id', 'client', 'method', 'code', 'detail'],
  tunnel_screen: ['request_id', 'verdict', 'reason', 'detail'],
  inference: ['request_id', 'agent', 'api', 'model', 'outcome', 'input_tokens', 'output_tokens', 'estimated', 'reserved', 'clamped_to', 'limit', 'budget'],
  dns: ['ingress', 'agent', 'via', 'client', 'transport', 'name', 'type', 'outcome', 'detail', 'removed'],
  dns_summary: ['since', 'counts', 'overflow'],
  agent_limit_summary: ['since', 'counts'],
  access_request: ['event', 'id', 'agent', 'host', 'port', 'count', 'first_seen', 'last_seen', 'by'],
  start: ['config', 'mode', 'rules', 'rule_files', 'bundle_version', 'proxy'],
  reload: ['outcome', 'rules', 'rule_files', 'errors'],
  stop: [],
  worker_exit: ['worker', 'pid', 'code', 'signal', 'replaced_by'],
  bundle_verification: ['outcome', 'stage', 'origin', 'version', 'signer', 'detail', 'at'],
  bundle_policy: ['policy', 'version', 'stale', 'reason'],
  bundle_shadow: ['version'],
  audit_recovery: ['reason', 'torn_bytes', 'torn_sha256', 'torn_file', 'failed_at', 'refused_appends', 'truncated_bytes'],
  admin_auth_failures: ['since', 'counts', 'overflow'],
  admin_tokens: ['outcome', 'tokens', 'error'],
  approval: ['action', 'id', 'agent', 'host', 'port', 'approver', 'reason', 'ticket', 'created', 'expires', 'override_blocklist', 'revoked_by', 'request_id', 'connections_cut'],
  agent_mode: ['agent', 'mode', 'by'],
  learned_cleared: ['agent', 'removed', 'by'],
  checkpoint: ['trigger', 'head_seq', 'head_hash', 'time', 'key', 'next_key', 'signature'],
  audit_retention: ['file', 'first_seq', 'last_seq', 'last_hash', 'bytes', 'reason'],
} as const satisfies { readonly [K in AuditKind]: readonly string[] };

/** The audit chain as the stages hold it: it takes the kinds above and nothing else. */
/**
 * `now`: the append starts a commit (the decision record, which Sluice waits for before acting).
 * `with_next_commit`: the record joins the next commit another append starts, or one started
 * after the chain's `deferred.maxDelayMs` (the close record, which nothing waits for): under load it costs no
 * write or fsync of its own and never puts a commit between a decision and its durability.
 */
export type AppendUrgency = 'now' | 'with_next_commit';

export interface AuditLog {
  /** `with_next_commit` lets a record nothing waits for share the next commit (see AuditChain) */
  append(entry: AuditEntry, urgency?: AppendUrgency): Promise<AuditRecord>;
}

/** What a decision record is made of: a request's context as ingress carries it (structurally). */
export interface DecisionFacts {
  readonly id: string;
  readonly kind: string;
  readonly ingress: string;
  readonly client: string;
  readonly method: string;
  readonly destination?: { readonly host: string; readonly port: number };
  readonly path?: string;
  readonly agent?: { readonly name: string; readonly via: string; readonly mode: string };
  readonly decision?: {
    readonly ruleId: string | null;
    readonly approval?: string;
    readonly listedBy?: { readonly source: string; readonly entry: string };
    readonly shadow?: { readonly version: number; readonly wouldDeny: boolean; readonly reason: string; readonly ruleId: string | null };
  };
  readonly bundleVersion?: number | null;
  readonly forbidden?: { readonly addressClass: string; readonly address: string };
  readonly parentProxy?: string;
  /** the request's OpenTelemetry span, when tracing is on */
  readonly span?: { readonly traceId: string };
}

export function decisionEntry(facts: DecisionFacts, verdict: string, reason: string, addresses: readonly string[] | undefined): DecisionEntry {
  const { decision, forbidden } = facts;
  return {
    kind: 'decision',
    request_id: facts.id,
    request_kind: facts.kind,
    ingress: facts.ingress,
    client: facts.client,
    agent: facts.agent?.name ?? null,
    via: facts.agent?.via ?? null,
    method: facts.method,
    host: facts.destination?.host ?? null,
    port: facts.destination?.port ?? null,
    path: facts.path ?? null,
    verdict,
    reason,
    rule: decision?.ruleId ?? null,
    mode: facts.agent?.mode ?? null,
    bundle_version: facts.bundleVersion ?? null,
    ...(decision?.listedBy === undefined ? {} : { blocklist_source: decision.listedBy.source, blocklist_entry: decision.listedBy.entry }),
    ...(decision?.shadow === undefined
      ? {}
      : { shadow_version: decision.shadow.version, shadow_would_deny: decision.shadow.wouldDeny, shadow_reason: decision.shadow.reason, shadow_rule: decision.shadow.ruleId }),
    ...(forbidden === undefined ? {} : { address_class: forbidden.addressClass, address: forbidden.address }),
    ...(addresses === undefined ? {} : { addresses }),
    ...(facts.parentProxy === undefined ? {} : { parent_proxy: facts.parentProxy }),
    ...(decision?.approval === undefined ? {} : { approval: decision.approval }),
    ...(facts.span === undefined ? {} : { trace_id: facts.span.traceId }),
  };
}

export interface CloseFacts {
  readonly id: string;
  readonly agent?: { readonly name: string };
  readonly destination?: { readonly host: string; readonly port: number };
  readonly upstream?: string;
  readonly bytesUp: number;
  readonly bytesDown: number;
}

export function closeEntry(facts: CloseFacts, durationMs: number, outcome: string): CloseEntry {
  return {
    kind: 'close',
    request_id: facts.id,
    agent: facts.agent?.name ?? null,
    host: facts.destination?.host ?? null,
    port: facts.destination?.port ?? null,
    upstream: facts.upstream ?? null, bytes_up: facts.bytesUp, bytes_down: facts.bytesDown, duration_ms: durationMs, outcome };
}

/** `error` is a SluiceError (structurally): its code and the message with its detail. */
export function badRequestEntry(facts: { readonly id: string; readonly client: string; readonly method: string }, error: { readonly code: string; readonly message: string }): BadRequestEntry {
  return { kind: 'bad_request', request_id: facts.id, client: facts.client, method: facts.method, code: error.code, detail: error.message };
}

export function tunnelScreenEntry(requestId: string, error: { readonly code: string; readonly message: string }): TunnelScreenEntry {
  return { kind: 'tunnel_screen', request_id: requestId, verdict: 'deny', reason: error.code.toLowerCase(), detail: error.message };
}

export interface DnsFacts {
  readonly agent: { readonly name: string; readonly via: string } | null;
  readonly peer: { readonly address: string; readonly port: number; readonly transport: string };
  readonly name: string;
  readonly type: string;
  readonly outcome: string;
  readonly detail?: string;
  readonly removed: number;
}

export function dnsEntry(query: DnsFacts): DnsEntry {
  return {
    kind: 'dns',
    ingress: 'dns',
    agent: query.agent?.name ?? null,
    via: query.agent?.via ?? null,
    client: `${query.peer.address}:${query.peer.port}`,
    transport: query.peer.transport,
    name: query.name,
    type: query.type,
    outcome: query.outcome,
    detail: query.detail ?? null,
    removed: query.removed,
  };
}

export function dnsSummaryEntry(since: Date, counts: readonly DnsSummaryRow[], overflow: number): DnsSummaryEntry {
  return { kind: 'dns_summary', since: since.toISOString(), counts, overflow };
}

export function agentLimitSummaryEntry(since: Date, counts: readonly AgentLimitSummaryRow[]): AgentLimitSummaryEntry {
  return { kind: 'agent_limit_summary', since: since.toISOString(), counts };
}

/** An access request's life: created by a Strict-mode denial, then denied by a human, cleared once allowed, or expired. */
export function accessRequestEntry(
  event: AccessRequestEntry['event'],
  request: { readonly id: string; readonly agent: string; readonly host: string; readonly port: number; readonly count: number; readonly firstSeen: Date; readonly lastSeen: Date },
  by: string | null = null,
): AccessRequestEntry {
  const { id, agent, host, port, count } = request;
  return { kind: 'access_request', event, id, agent, host, port, count, first_seen: request.firstSeen.toISOString(), last_seen: request.lastSeen.toISOString(), by };
}

export function startEntry(facts: Omit<StartEntry, 'kind'>): StartEntry {
  return { kind: 'start', ...facts };
}

/** A rule reload that took the new rule files into use. */
export function reloadAcceptedEntry(rules: { readonly size: number; readonly files: Iterable<string> }): ReloadEntry {
  return { kind: 'reload', outcome: 'accepted', rules: rules.size, rule_files: [...rules.files] };
}

/** A rule reload refused whole: every problem found, the rules in force unchanged. */
export function reloadRejectedEntry(errors: readonly string[]): ReloadEntry {
  return { kind: 'reload', outcome: 'rejected', errors };
}

export function stopEntry(): StopEntry {
  return { kind: 'stop' };
}

export function workerExitEntry(exit: Omit<WorkerExitEntry, 'kind'>): WorkerExitEntry {
  return { kind: 'worker_exit', ...exit };
}

/** One bundle verification outcome; undefined version or signer become null (the chain refuses undefined). */
export function bundleVerificationEntry(event: {
  readonly outcome: string;
  readonly stage: string;
  readonly origin: string;
  readonly version: number | undefined;
  readonly signer: string | undefined;
  readonly detail: string;
  readonly at: Date;
}): BundleVerificationEntry {
  const { outcome, stage, origin, detail } = event;
  return { kind: 'bundle_verification', outcome, stage, origin, version: event.version ?? null, signer: event.signer ?? null, detail, at: event.at.toISOString() };
}

/** The policy that governs traffic now: a bundle version, or the offline fallback and why. */
export function bundlePolicyEntry(policy: { readonly kind: 'bundle'; readonly version: number; readonly stale: boolean } | { readonly kind: string; readonly reason: string }): BundlePolicyEntry {
  return 'version' in policy
    ? { kind: 'bundle_policy', policy: 'bundle', version: policy.version, stale: policy.stale, reason: null }
    : { kind: 'bundle_policy', policy: policy.kind, version: null, stale: false, reason: policy.reason };
}

export function bundleShadowEntry(version: number | null): BundleShadowEntry {
  return { kind: 'bundle_shadow', version };
}

export function adminAuthFailuresEntry(summary: { readonly since: Date; readonly counts: AdminAuthFailuresEntry['counts']; readonly overflow: number }): AdminAuthFailuresEntry {
  return { kind: 'admin_auth_failures', since: summary.since.toISOString(), counts: summary.counts, overflow: summary.overflow };
}

/** The admin tokens the running process took into use (names and roles, never hashes), or why it kept the last good set. */
export function adminTokensEntry(change: { readonly tokens: readonly { readonly name: string; readonly role: string }[] } | { readonly error: Error }): AdminTokensEntry {
  return 'error' in change
    ? { kind: 'admin_tokens', outcome: 'rejected', error: change.error.message }
    : { kind: 'admin_tokens', outcome: 'loaded', tokens: change.tokens.map(({ name, role }) => ({ name, role })) };
}

/** A time-boxed approval (what policy/approvals.ts indexes for decide()). */
export interface ApprovalFacts {
  readonly id: string;
  readonly agent: string;
  /** normalised like a Destination's host */
  readonly host: string;
  /** null: every port */
  readonly port: number | null;
  /** the token name that granted it */
  readonly approver: string;
  readonly reason: string;
  readonly ticket: string | null;
  readonly createdMs: number;
  readonly expiresMs: number;
  /** lets a blocklisted host through; only the admin role may grant it */
  readonly overrideBlocklist: boolean;
}

type ApprovalFields = Omit<ApprovalEntry, 'kind' | 'action' | 'revoked_by' | 'request_id' | 'connections_cut'>;

export function approvalEntry(
  action: ApprovalEntry['action'],
  approval: ApprovalFacts,
  extra: { readonly revoked_by?: string; readonly request_id?: string; readonly connections_cut?: number } = {},
): ApprovalEntry {
  return { kind: 'approval', action, ...approvalFields(approval), ...extra };
}

/** An approval as records, the admin API and the CLI show it: times as ISO-8601, names in snake case. */
export function approvalFields(approval: ApprovalFacts): ApprovalFields {
  return {
    id: approval.id,
    agent: approval.agent,
    host: approval.host,
    port: approval.port,
    approver: approval.approver,
    reason: approval.reason,
    ticket: approval.ticket,
    created: new Date(approval.createdMs).toISOString(),
    expires: new Date(approval.expiresMs).toISOString(),
    override_blocklist: approval.overrideBlocklist,
  };
}

export function agentModeEntry(agent: string, mode: string, by: string): AgentModeEntry {
  return { kind: 'agent_mode', agent, mode, by };
}

export function learnedClearedEntry(agent: string, removed: number, by: string): LearnedClearedEntry {
  return { kind: 'learned_cleared', agent, removed, by };
}

export function inferenceEntry(facts: Omit<InferenceEntry, 'kind'>): InferenceEntry {
  return { kind: 'inference', ...facts };
}
