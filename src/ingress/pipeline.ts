// The stages every ingress path runs in order: identity → policy → connect (resolve and vet) →
// audit. One decision record per request, sealed before Sluice acts on it and durable first unless
// a durable session decision already covers it (requests inside an intercepted TLS session).
import { badRequestEntry, closeEntry, decisionEntry, type AuditLog, type DecisionEntry } from '../audit/kinds.js';
import type { AddressGuard, ResolveAndVetDeps, Resolver, VettedDestination } from '../connect/index.js';
import { ForbiddenDestinationError, resolveAndVet } from '../connect/index.js';
import { isSluiceError, SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection, IdentityResolver } from '../identity/identify.js';
import type { PresentedCredential } from '../identity/proxy-credentials.js';
import type { InferenceMetering } from '../meter/call.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { Tracing } from '../obs/tracing.js';
import { decide, decideAddresses, type DecideArgs, type Policy } from '../policy/decide.js';
import { DENY_ERROR, type Decision } from '../policy/decision.js';
import type { ApprovalStore } from '../policy/approval-store.js';
import type { LearnStore } from '../policy/learn-store.js';
import type { ApprovedConnections } from './approved-connections.js';
import type { AccessRequest } from '../policy/access-requests.js';
import type { ClosingClient, HeldRequests } from '../policy/hold.js';
import type { LimitOutcome } from './agent-limits.js';
import type { Agent } from '../agent.js';
import type { Ingress, RequestContext } from './context.js';
import type { Destination } from '../destination.js';
import { refusalFor, type Refusal } from './respond.js';

export interface PipelineDeps {
  /** the listener these deps serve, recorded in every decision */
  readonly ingress: Ingress;
  readonly identity: IdentityResolver;
  /** the policy in force now; a function so a later rule set can be swapped in atomically */
  readonly policy: () => Policy;
  /** the time decisions are taken at: approvals are in force strictly before they expire */
  readonly now: () => number;
  readonly learn: Pick<LearnStore, 'record'>;
  /** told of each request an approval let through (its first use is audited) */
  readonly approvals?: Pick<ApprovalStore, 'noteUse'>;
  /** live tunnels by the approval that let them through, cut when it ends */
  readonly approved?: ApprovedConnections;
  readonly addressGuard: AddressGuard;
  readonly resolver: Resolver;
  /** vetted answers by name (connect.dns_cache); absent, every request resolves */
  readonly dnsCache?: ResolveAndVetDeps['cache'];
  /** connect.upstream_proxy; absent, every destination is dialled directly */
  readonly parents?: ResolveAndVetDeps['parents'];
  readonly connectTimeoutMs: number;
  /** agents[].limits; absent, no agent has limits of its own. A worker asks the primary (workers: N). */
  readonly agentLimits?: { admit(agent: string): LimitOutcome | Promise<LimitOutcome> };
  /** where Strict-mode denials that no rule decided become access requests; a worker asks the primary */
  readonly accessRequests?: { record(agent: Agent, host: string, port: number): AccessRequest | null | Promise<AccessRequest | null> };
  /** agents with on_unknown: hold wait here for a policy that decides them */
  readonly holds?: HeldRequests;
  /** the metering stage; absent, no call is metered (inference disabled) */
  readonly meter?: InferenceMetering;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** otel.endpoint: a span per request; absent, no tracing work at all */
  readonly tracing?: Tracing;
}

export interface AdmissionRequest {
  readonly credential: PresentedCredential;
  readonly connection: ClientConnection;
  readonly destination: Destination;
  readonly path?: string;
  /**
   * The tunnel's first bytes are judged after admission (the CONNECT SNI screen): an admitted
   * decision is counted once that verdict is in, so a refused tunnel is one deny, not allow + deny.
   */
  readonly countLater?: boolean;
  /** the agent's W3C trace context header, continued by the request's span (sent twice: ignored) */
  readonly traceparent?: string | readonly string[] | undefined;
  /** closes when the client hangs up (a forward request's response): a held request then stops waiting */
  readonly client?: ClosingClient;
  /**
   * The request travels inside a session (an intercepted TLS tunnel) whose own decision to reach
   * this destination was durable before the session began: an admitting decision record then rides
   * the chain's next commit instead of waiting for one of its own (docs/audit.md).
   */
  readonly insideDurableSession?: boolean;
}

/** Raised when the pipeline refuses: the refusal is already audited; the caller only responds. */
export class RefusedError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
    this.name = 'RefusedError';
  }
}

/**
 * Runs identity, policy and address vetting for one request and durably audits the decision.
 * Returns the vetted destination to dial; throws RefusedError for anything else.
 */
export async function admit(deps: PipelineDeps, context: RequestContext, request: AdmissionRequest): Promise<VettedDestination> {
  context.destination = request.destination;
  if (request.path !== undefined) context.path = request.path;
  if (deps.tracing !== undefined) {
    const { host, port } = request.destination;
    const traceparent = typeof request.traceparent === 'string' ? request.traceparent : undefined;
    context.span = deps.tracing.startRequest(`sluice ${context.kind}`, traceparent, {
      'sluice.request_id': context.id,
      'sluice.ingress': context.ingress,
      'server.address': host,
      'server.port': port,
      'http.request.method': context.method,
    });
  }
  let decision: Decision | undefined;
  let failure: SluiceError | undefined;
  let vetted: VettedDestination | undefined;
  let overLimit: Refusal | undefined;
  // One policy snapshot per request: a bundle swap mid-request cannot mix two rule sets. A held
  // request proceeds on the snapshot that decided it.
  let policy = deps.policy();
  context.bundleVersion = policy.bundleVersion ?? null;
  try {
    const agent = deps.identity.identify(request.credential, request.connection);
    context.agent = agent;
    const slot = await deps.agentLimits?.admit(agent.name);
    if (slot?.admitted === false) {
      overLimit = { ...refusalFor(context.id, new SluiceError(slot.code, agent.name), 'deny'), retryAfterSeconds: slot.retryAfterSeconds };
    } else {
      if (slot !== undefined) context.release = slot.release;
      const now = deps.now();
      const args: DecideArgs =
        context.kind === 'tunnel' || request.path === undefined
          ? { agent, destination: request.destination, now }
          : { agent, destination: request.destination, method: context.method, path: request.path, now };
      ({ policy, decision } = await decideOrHold(deps, context.id, policy, args, request.client));
      context.bundleVersion = policy.bundleVersion ?? null;
      if (decision.verdict !== 'deny') {
        const started = performance.now();
        try {
          vetted = await resolveAndVet(request.destination, { addressGuard: deps.addressGuard, resolver: deps.resolver, metrics: deps.metrics, cache: deps.dnsCache, parents: deps.parents });
          if (vetted.parent !== undefined) context.parentProxy = vetted.parent.proxy.label;
        } finally {
          deps.metrics.upstreamConnectSeconds.observe((performance.now() - started) / 1000);
        }
        decision = decideAddresses(policy, args, decision, vetted.addresses.map((entry) => entry.address));
      }
    }
  } catch (error) {
    if (error instanceof ForbiddenDestinationError) {
      decision = { verdict: 'deny', reason: 'destination_forbidden', ruleId: null };
      context.forbidden = { addressClass: error.addressClass, address: error.address };
    } else {
      failure = isSluiceError(error) ? error : new SluiceError('INTERNAL', undefined, { cause: error });
    }
  }
  if (overLimit !== undefined) {
    // A flood over an agent's limit is counted and summarised (agent_limit_summary), not recorded per request.
    deps.metrics.decisions.inc({ verdict: 'deny', reason: overLimit.code.toLowerCase() });
    context.span?.end();
    throw new RefusedError(overLimit);
  }
  if (decision !== undefined) context.decision = decision;
  let deniedByPolicy = false;
  try {
    await recordDecision(deps, context, failure, vetted?.addresses.map((entry) => entry.address), request.countLater === true, request.insideDurableSession === true);
    if (failure !== undefined) throw new RefusedError(refusalFor(context.id, failure));
    if (decision === undefined || vetted === undefined || decision.verdict === 'deny') {
      const denied = decision?.verdict === 'deny' ? decision : undefined;
      deniedByPolicy = denied !== undefined;
      const code = denied === undefined ? 'INTERNAL' : DENY_ERROR[denied.reason];
      const { host, port } = request.destination;
      throw new RefusedError(refusalFor(context.id, new SluiceError(code, `${host}:${port}`), 'deny', denied?.ruleId ?? null));
    }
  } catch (error) {
    // The request ends here: its span (an error unless policy denied it) and its concurrency slot.
    context.span?.end(!deniedByPolicy);
    context.release?.();
    throw error;
  }
  if (decision.approval !== undefined) deps.approvals?.noteUse(decision.approval, context.id);
  if (decision.verdict === 'learn' && context.agent !== undefined) {
    deps.learn.record({ agent: context.agent.name, host: request.destination.host, port: request.destination.port, at: new Date() });
  }
  return vetted;
}

/**
 * The policy's decision; when no rule decided (Strict mode), the refusal becomes an access request
 * and, for an agent with on_unknown: hold, the request waits for a policy that decides it.
 */
async function decideOrHold(deps: PipelineDeps, requestId: string, policy: Policy, args: DecideArgs, client: ClosingClient | undefined): Promise<{ policy: Policy; decision: Decision }> {
  const decision = decide(policy, args);
  if (decision.verdict !== 'deny' || decision.reason !== 'no_matching_rule') return { policy, decision };
  const asked = await deps.accessRequests?.record(args.agent, args.destination.host, args.destination.port);
  // A request a human has denied is not held again: the answer is known.
  if (deps.holds === undefined || !deps.holds.holds(args.agent.name) || asked?.status === 'denied') return { policy, decision };
  const { host, port } = args.destination;
  deps.log.info({ request_id: requestId, agent: args.agent.name, host, port, access_request: asked?.id ?? null }, 'request held until a rule or approval decides it');
  const outcome = await deps.holds.wait(args, client);
  deps.log.info({ request_id: requestId, verdict: outcome.decision.verdict, reason: outcome.decision.reason }, 'held request decided');
  return outcome;
}

async function recordDecision(
  deps: PipelineDeps,
  context: RequestContext,
  failure: SluiceError | undefined,
  vettedAddresses: readonly string[] | undefined,
  countLater: boolean,
  insideDurableSession: boolean,
): Promise<void> {
  const decision = context.decision;
  const verdict = failure !== undefined ? 'error' : (decision?.verdict ?? 'error');
  const reason = failure !== undefined ? failure.code.toLowerCase() : (decision?.reason ?? 'internal');
  if (countLater && verdict !== 'deny' && verdict !== 'error') context.uncounted = { verdict, reason };
  else deps.metrics.decisions.inc({ verdict, reason });
  if (decision?.shadow?.wouldDeny === true) deps.metrics.bundleShadowWouldDeny.inc({ reason: decision.shadow.reason });
  const record = decisionEntry(context, verdict, reason, vettedAddresses);
  context.span?.set({ 'sluice.agent': record.agent ?? '', 'sluice.verdict': verdict, 'sluice.reason': reason, 'sluice.rule': record.rule ?? '' });
  deps.log.info({ request_id: context.id, agent: record.agent, host: record.host, port: record.port, verdict, reason, rule: record.rule }, 'decision');
  try {
    if (insideDurableSession && (verdict === 'allow' || verdict === 'learn')) await appendCoveredBySession(deps, record, context.id);
    else await deps.audit.append(record);
  } catch (error) {
    deps.log.error({ err: error, request_id: context.id }, 'audit append failed; refusing');
    throw new RefusedError(refusalFor(context.id, 'AUDIT_UNAVAILABLE'));
  }
}

/** Settles before any appended record can: what a chain that refuses appends loses the race to. */
const ACCEPTED = Promise.resolve('accepted' as const);

/**
 * Appends an admitting decision whose session's decision is already durable, without waiting for
 * its commit: the record is sealed (its place in the chain fixed) before the request goes upstream.
 * Still fail closed: a chain that refuses appends (failed, closed) rejects at once, and an already
 * rejected promise wins a race against an already resolved one listed after it.
 */
async function appendCoveredBySession(deps: PipelineDeps, record: DecisionEntry, requestId: string): Promise<void> {
  let forwarded = false;
  const appended = deps.audit.append(record, 'with_next_commit');
  appended.catch((error: unknown) => {
    // A refusal at once is recordDecision's to report; a commit that fails after the request went
    // upstream leaves a forwarded request without its record, which only this line tells.
    if (forwarded) deps.log.error({ err: error, request_id: requestId }, 'decision record of a forwarded session request lost: its commit failed');
  });
  await Promise.race([appended, ACCEPTED]);
  forwarded = true;
}

/**
 * Refusals before a destination was even parsed: malformed requests. A parser's SluiceError says
 * why; anything else thrown while reading the request counts as `fallback`.
 */
export async function recordBadRequest(deps: PipelineDeps, context: RequestContext, thrown: unknown, fallback: ErrorCode = 'BAD_REQUEST'): Promise<Refusal> {
  const error = isSluiceError(thrown) ? thrown : new SluiceError(fallback);
  deps.metrics.decisions.inc({ verdict: 'error', reason: error.code.toLowerCase() });
  deps.log.warn({ request_id: context.id, client: context.client, code: error.code, detail: error.message }, 'bad request');
  try {
    await deps.audit.append(badRequestEntry(context, error));
  } catch (auditError) {
    deps.log.error({ err: auditError, request_id: context.id }, 'audit append failed');
  }
  return refusalFor(context.id, error);
}

/**
 * Counts a held decision metric once: as `final` when a later check overturned the admission,
 * else as admitted. Nothing happens when none is held (or it was counted already).
 */
export function countDecision(deps: PipelineDeps, context: RequestContext, final?: { readonly verdict: string; readonly reason: string }): void {
  if (context.uncounted === undefined) return;
  deps.metrics.decisions.inc(final ?? context.uncounted);
  delete context.uncounted;
}

/** The close record: bytes each way, duration and the upstream address, or why it failed. */
export function recordClose(deps: PipelineDeps, context: RequestContext, outcome: ErrorCode | 'ok'): void {
  // A tunnel that failed to dial or closed before its first bytes were judged stood as admitted.
  countDecision(deps, context);
  context.release?.();
  deps.metrics.bytes.inc({ direction: 'upstream' }, context.bytesUp);
  deps.metrics.bytes.inc({ direction: 'downstream' }, context.bytesDown);
  const durationMs = Math.round(performance.now() - context.startedAt);
  context.span?.set({ 'sluice.outcome': outcome, 'sluice.bytes_up': context.bytesUp, 'sluice.bytes_down': context.bytesDown });
  context.span?.end(outcome !== 'ok');
  deps.log.debug({ request_id: context.id, upstream: context.upstream, bytes_up: context.bytesUp, bytes_down: context.bytesDown, duration_ms: durationMs, outcome }, 'close');
  // Nothing waits for the close record: it rides in the next decision's commit instead of
  // costing a write and an fsync of its own that the next decision would queue behind.
  deps.audit
    .append(closeEntry(context, durationMs, outcome), 'with_next_commit')
    .catch((error: unknown) => deps.log.error({ err: error, request_id: context.id }, 'audit append of close record failed'));
}
