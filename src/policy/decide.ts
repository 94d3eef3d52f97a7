// The policy decision: a pure function of the policy and one request, no I/O, no clock, so it
// can be tested by table and reasoned about in isolation.
import type { Agent } from '../identity/agent.js';
import type { Destination } from '../ingress/destination.js';
import { deny, type Decision } from './decision.js';
import type { RuleSet } from './rule-set.js';

export interface Policy {
  readonly rules: RuleSet;
  readonly anonymousAllowed: boolean;
}

export interface DecideArgs {
  readonly agent: Agent;
  readonly destination: Destination;
  /** plain HTTP only: a CONNECT tunnel hides the method and path */
  readonly method?: string;
  readonly path?: string;
}

const ANONYMOUS_DENIED: Decision = Object.freeze(deny('anonymous_denied', null));
const NO_MATCHING_RULE: Decision = Object.freeze(deny('no_matching_rule', null));
const LEARN_UNMATCHED: Decision = Object.freeze({ verdict: 'learn', reason: 'learn_unmatched', ruleId: null });

/**
 * Order: anonymous refusal, then any deny rule (deny beats allow whatever the file order), then
 * the first allow rule, then the agent's mode. A rule constrained by method or path never allows
 * what it cannot see (CONNECT), but a deny rule so constrained denies it (fail closed).
 */
export function decide(policy: Policy, args: DecideArgs): Decision {
  const { agent } = args;
  if (agent.via === 'anonymous' && !policy.anonymousAllowed) return ANONYMOUS_DENIED;
  const denied = policy.rules.firstMatch('deny', args);
  if (denied !== undefined) return denied.decision;
  const allowed = policy.rules.firstMatch('allow', args);
  if (allowed !== undefined) return allowed.decision;
  return agent.mode === 'strict' ? NO_MATCHING_RULE : LEARN_UNMATCHED;
}
