// Plain-JSON audit fields for bundle events (verification outcomes and changes of the governing
// policy), shaped for the audit chain, which refuses Dates, undefined and class instances.
import type { BundleOutcomeEvent } from './manager.js';
import type { EffectivePolicy } from './offline-policy.js';

export interface BundleAuditFields {
  readonly kind: 'bundle_verification' | 'bundle_policy' | 'bundle_shadow';
  readonly [field: string]: string | number | boolean | null;
}

export function outcomeAuditFields(event: BundleOutcomeEvent): BundleAuditFields {
  return {
    kind: 'bundle_verification',
    outcome: event.outcome,
    stage: event.stage,
    origin: event.origin,
    version: event.version ?? null,
    signer: event.signer ?? null,
    detail: event.detail,
    at: event.at.toISOString(),
  };
}

export function policyAuditFields(policy: EffectivePolicy): BundleAuditFields {
  return policy.kind === 'bundle'
    ? { kind: 'bundle_policy', policy: 'bundle', version: policy.version, stale: policy.stale, reason: null }
    : { kind: 'bundle_policy', policy: policy.kind, version: null, stale: false, reason: policy.reason };
}

export function shadowAuditFields(version: number | null): BundleAuditFields {
  return { kind: 'bundle_shadow', version };
}
