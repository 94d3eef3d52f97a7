// The stages every ingress path runs in order: identity → policy → connect (resolve and vet) →
// audit. One durable decision record per request, written before Sluice acts on it.
import { badRequestEntry, closeEntry, decisionEntry, type AuditLog } from '../audit/kinds.js';
import type { AddressGuard, ResolveAndVetDeps, Resolver, VettedDestination } from '../connect/index.js';
import { ForbiddenDestinationError, resolveAndVet } from '../connect/index.js';
import { isSluiceError, SluiceError, type ErrorCode } from '../errors.js';
import type { ClientConnection, IdentityResolver } from '../identity/identify.js';
import type { PresentedCredential } from '../identity/proxy-credentials.js';
import type { InferenceMetering } from '../meter/call.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { decide, decideAddresses, type DecideArgs, type Policy } from '../policy/decide.js';
import { DENY_ERROR, type Decision } from '../policy/decision.js';
import type { LearnStore } from '../policy/learn-store.js';
import type { RequestContext } from './context.js';
import type { Destination } from '../destination.js';
import { refusalFor, type Refusal } from './respond.js';

export interface PipelineDeps {
  readonly identity: IdentityResolver;
  /** the policy in force now; a function so a later rule set can be swapped in atomically */
  readonly policy: () => Policy;
  readonly learn: LearnStore;
  readonly addressGuard: AddressGuard;
  readonly resolver: Resolver;
  /** vetted answers by name (connect.dns_cache); absent, every request resolves */
  readonly dnsCache?: ResolveAndVetDeps['cache'];
  /** connect.upstream_proxy; absent, every destination is dialled directly */
  readonly parents?: ResolveAndVetDeps['parents'];
  readonly connectTimeoutMs: number;
  /** the metering stage; absent, no call is metered (inference disabled) */
  readonly meter?: InferenceMetering;
  readonly audit: AuditLog;
  readonly metrics: Metrics;
  readonly log: Logger;
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
  let decision: Decision | undefined;
  let failure: SluiceError | undefined;
  let vetted: VettedDestination | undefined;
  // One policy snapshot per request: a bundle swap mid-request cannot mix two rule sets.
  const policy = deps.policy();
  context.bundleVersion = policy.bundleVersion ?? null;
  try {
    context.agent = deps.identity.identify(request.credential, request.connection);
    const args: DecideArgs =
      context.kind === 'tunnel' || request.path === undefined
        ? { agent: context.agent, destination: request.destination }
        : { agent: context.agent, destination: request.destination, method: context.method, path: request.path };
    decision = decide(policy, args);
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
  } catch (error) {
    if (error instanceof ForbiddenDestinationError) {
      decision = { verdict: 'deny', reason: 'destination_forbidden', ruleId: null };
      context.forbidden = { addressClass: error.addressClass, address: error.address };
    } else {
      failure = isSluiceError(error) ? error : new SluiceError('INTERNAL', undefined, { cause: error });
    }
  }
  if (decision !== undefined) context.decision = decision;
  await recordDecision(deps, context, failure, vetted?.addresses.map((entry) => entry.address), request.countLater === true);
  if (failure !== undefined) throw new RefusedError(refusalFor(context.id, failure));
  if (decision === undefined || vetted === undefined || decision.verdict === 'deny') {
    const denied = decision?.verdict === 'deny' ? decision : undefined;
    const code = denied === undefined ? 'INTERNAL' : DENY_ERROR[denied.reason];
    const { host, port } = request.destination;
    throw new RefusedError(refusalFor(context.id, new SluiceError(code, `${host}:${port}`), 'deny', denied?.ruleId ?? null));
  }
  if (decision.verdict === 'learn' && context.agent !== undefined) {
    deps.learn.record({ agent: context.agent.name, host: request.destination.host, port: request.destination.port, at: new Date() });
  }
  return vetted;
}

async function recordDecision(
  deps: PipelineDeps,
  context: RequestContext,
  failure: SluiceError | undefined,
  vettedAddresses: readonly string[] | undefined,
  countLater: boolean,
): Promise<void> {
  const decision = context.decision;
  const verdict = failure !== undefined ? 'error' : (decision?.verdict ?? 'error');
  const reason = failure !== undefined ? failure.code.toLowerCase() : (decision?.reason ?? 'internal');
  if (countLater && verdict !== 'deny' && verdict !== 'error') context.uncounted = { verdict, reason };
  else deps.metrics.decisions.inc({ verdict, reason });
  if (decision?.shadow?.wouldDeny === true) deps.metrics.bundleShadowWouldDeny.inc({ reason: decision.shadow.reason });
  const record = decisionEntry(context, verdict, reason, vettedAddresses);
  deps.log.info({ request_id: context.id, agent: record.agent, host: record.host, port: record.port, verdict, reason, rule: record.rule }, 'decision');
  try {
    await deps.audit.append(record);
  } catch (error) {
    deps.log.error({ err: error, request_id: context.id }, 'audit append failed; refusing');
    throw new RefusedError(refusalFor(context.id, 'AUDIT_UNAVAILABLE'));
  }
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
  deps.metrics.bytes.inc({ direction: 'upstream' }, context.bytesUp);
  deps.metrics.bytes.inc({ direction: 'downstream' }, context.bytesDown);
  const durationMs = Math.round(performance.now() - context.startedAt);
  deps.log.debug({ request_id: context.id, upstream: context.upstream, bytes_up: context.bytesUp, bytes_down: context.bytesDown, duration_ms: durationMs, outcome }, 'close');
  deps.audit
    .append(closeEntry(context, durationMs, outcome))
    .catch((error: unknown) => deps.log.error({ err: error, request_id: context.id }, 'audit append of close record failed'));
}
