// The policy stage's answer: a discriminated union that always carries a machine-readable
// reason and the id of the rule that decided (null when no rule did).
import type { ErrorCode } from '../errors.js';

export type DenyReason = 'rule_deny' | 'no_matching_rule' | 'anonymous_denied' | 'destination_forbidden';

export type Decision =
  | { readonly verdict: 'allow'; readonly reason: 'rule_allow'; readonly ruleId: string }
  | { readonly verdict: 'learn'; readonly reason: 'learn_unmatched'; readonly ruleId: null }
  | { readonly verdict: 'deny'; readonly reason: DenyReason; readonly ruleId: string | null };

export type Verdict = Decision['verdict'];

/** The error an agent sees for each deny reason. */
export const DENY_ERROR: Readonly<Record<DenyReason, ErrorCode>> = {
  rule_deny: 'RULE_DENY',
  no_matching_rule: 'NO_MATCHING_RULE',
  anonymous_denied: 'ANONYMOUS_DENIED',
  destination_forbidden: 'DESTINATION_FORBIDDEN',
};

export function deny(reason: DenyReason, ruleId: string | null): Decision {
  return { verdict: 'deny', reason, ruleId };
}
