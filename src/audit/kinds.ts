// Every kind of record Sluice appends to the audit chain, as one discriminated union, and the
// builders that make each from what a stage knows. A new kind extends the union, AUDIT_FIELDS and docs/audit.md.
import type { AuditRecord } from './record.js';

export type DecisionEntry = {
  readonly kind: 'decision';
  readonly request_id: string;
  readonly request_kind: string;
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
};

export type CloseEntry = {
  readonly kind: 'close';
  readonly request_id: string;
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

/** One metered inference call, settled or refused by its budget (docs/inference.md). */
export type InferenceEntry = {
  readonly kind: 'inference';
  readonly request_id: string;
  readonly agent: string;
  readonly api: string;
  readonly model: string;
  /** settled: usage counted; over_budget: refused before dispatch; cut: stopped past its reservation; aborted: agent or upstream gone */
  readonly outcome: 'settled' | 'over_budget' | 'cut' | 'aborted' | 'store_unusable';
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
  | StartEntry
  | ReloadEntry
  | StopEntry
  | BundleVerificationEntry
  | BundlePolicyEntry
  | BundleShadowEntry
  | AuditRecoveryEntry;

export type AuditKind = AuditEntry['kind'];

/** Every field a kind may carry (in any of its variants), for docs/audit.md and its test. */
export const AUDIT_FIELDS = {
  decision: ['request_id', 'request_kind', 'client', 'agent', 'via', 'method', 'host', 'port', 'path', 'verdict', 'reason', 'rule', 'mode', 'bundle_version', 'blocklist_source', 'blocklist_entry', 'shadow_version', 'shadow_would_deny', 'shadow_reason', 'shadow_rule', 'address_class', 'address', 'addresses', 'parent_proxy'],
  close: ['request_id', 'upstream', 'bytes_up', 'bytes_down', 'duration_ms', 'outcome'],
  bad_request: ['request_id', 'client', 'method', 'code', 'detail'],
  tunnel_screen: ['request_id', 'verdict', 'reason', 'detail'],
  inference: ['request_id', 'agent', 'api', 'model', 'outcome', 'input_tokens', 'output_tokens', 'estimated', 'reserved', 'clamped_to', 'limit', 'budget'],
  dns: ['agent', 'via', 'client', 'transport', 'name', 'type', 'outcome', 'detail', 'removed'],
  dns_summary: ['since', 'counts', 'overflow'],
  start: ['config', 'mode', 'rules', 'rule_files', 'bundle_version', 'proxy'],
  reload: ['outcome', 'rules', 'rule_files', 'errors'],
  stop: [],
  bundle_verification: ['outcome', 'stage', 'origin', 'version', 'signer', 'detail', 'at'],
  bundle_policy: ['policy', 'version', 'stale', 'reason'],
  bundle_shadow: ['version'],
  audit_recovery: ['reason', 'torn_bytes', 'torn_sha256', 'torn_file', 'failed_at', 'refused_appends', 'truncated_bytes'],
} as const satisfies { readonly [K in AuditKind]: readonly string[] };

/** The audit chain as the stages hold it: it takes the kinds above and nothing else. */
export interface AuditLog {
  append(entry: AuditEntry): Promise<AuditRecord>;
}

/** What a decision record is made of: a request's context as ingress carries it (structurally). */
export interface DecisionFacts {
  readonly id: string;
  readonly kind: string;
  readonly client: string;
  readonly method: string;
  readonly destination?: { readonly host: string; readonly port: number };
  readonly path?: string;
  readonly agent?: { readonly name: string; readonly via: string; readonly mode: string };
  readonly decision?: {
    readonly ruleId: string | null;
    readonly listedBy?: { readonly source: string; readonly entry: string };
    readonly shadow?: { readonly version: number; readonly wouldDeny: boolean; readonly reason: string; readonly ruleId: string | null };
  };
  readonly bundleVersion?: number | null;
  readonly forbidden?: { readonly addressClass: string; readonly address: string };
  readonly parentProxy?: string;
}

export function decisionEntry(facts: DecisionFacts, verdict: string, reason: string, addresses: readonly string[] | undefined): DecisionEntry {
  const { decision, forbidden } = facts;
  return {
    kind: 'decision',
    request_id: facts.id,
    request_kind: facts.kind,
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
  };
}

export function closeEntry(facts: { readonly id: string; readonly upstream?: string; readonly bytesUp: number; readonly bytesDown: number }, durationMs: number, outcome: string): CloseEntry {
  return { kind: 'close', request_id: facts.id, upstream: facts.upstream ?? null, bytes_up: facts.bytesUp, bytes_down: facts.bytesDown, duration_ms: durationMs, outcome };
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

export function inferenceEntry(facts: Omit<InferenceEntry, 'kind'>): InferenceEntry {
  return { kind: 'inference', ...facts };
}
