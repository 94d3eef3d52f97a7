// The policy stage's answer: a discriminated union that always carries a machine-readable
// reason and the id of the rule that decided (null when no rule did).
import type { ErrorCode } from '../errors.js';
import type { BlocklistMatch } from './blocklist/set.js';

export type DenyReason =
  | 'rule_deny'
  | 'no_matching_rule'
  | 'anonymous_denied'
  | 'destination_forbidden'
  | 'blocklisted'
  | 'no_valid_bundle'
  | 'hold_timeout'
  | 'hold_full';

/** What a `report`-mode bundle would have said: counted and audited, never enforced. */
export interface ShadowVerdict {
  readonly version: number;
  readonly wouldDeny: boolean;
  readonly reason: string;
  readonly ruleId: string | null;
}

interface Extras {
  /** the blocklist entry involved: why a deny happened, or what an override let through */
  readonly listedBy?: BlocklistMatch;
  readonly shadow?: ShadowVerdict;
  /** the time-boxed approval that allowed it */
  readonly approval?: string;
}

export type Decision =
  | ({ readonly verdict: 'allow'; readonly reason: 'rule_allow' | 'blocklist_override' | 'approval_allow'; readonly ruleId: string } & Extras)
  | ({ readonly verdict: 'learn'; readonly reason: 'learn_unmatched'; readonly ruleId: null } & Extras)
  | ({ readonly verdict: 'deny'; readonly reason: DenyReason; readonly ruleId: string | null } & Extras);

export type Verdict = Decision['verdict'];

/** The error an agent sees for each deny reason. */
export const DENY_ERROR: Readonly<Record<DenyReason, ErrorCode>> = {
  rule_deny: 'RULE_DENY',
  no_matching_rule: 'NO_MATCHING_RULE',
  anonymous_denied: 'ANONYMOUS_DENIED',
  destination_forbidden: 'DESTINATION_FORBIDDEN',
  blocklisted: 'BLOCKLISTED',
  no_valid_bundle: 'NO_VALID_BUNDLE',
  hold_timeout: 'HOLD_TIMEOUT',
  hold_full: 'HOLD_CAPACITY',
};

export function deny(reason: DenyReason, ruleId: string | null): Decision {
  return { verdict: 'deny', reason, ruleId };
}
