// The policy decision: a pure function of the policy and one request, no I/O, no clock (the time
// is an argument), so it can be tested by table and reasoned about in isolation.
import type { Agent } from '../agent.js';
import type { Destination } from '../destination.js';
import type { BlocklistMatch, BlocklistSet } from './blocklist/set.js';
import type { Approval, ApprovalIndex } from './approvals.js';
import { deny, type Decision, type ShadowVerdict } from './decision.js';
import type { RuleSet } from './rule-set.js';

export interface Policy {
  readonly rules: RuleSet;
  readonly anonymousAllowed: boolean;
  /** malicious-domain lists; they beat allow rules and Learn mode */
  readonly blocklist?: BlocklistSet;
  /** the signed bundle version the rules came from; absent for local rule files */
  readonly bundleVersion?: number;
  /** set when the bundle offline mode says no rule set may decide: everything is denied */
  readonly noValidBundle?: boolean;
  /** a `report` bundle evaluated beside the enforced rules */
  readonly shadow?: { readonly rules: RuleSet; readonly version: number };
  /** time-boxed approvals granted through the admin API */
  readonly approvals?: ApprovalIndex;
}

export interface DecideArgs {
  readonly agent: Agent;
  readonly destination: Destination;
  /** plain HTTP only: a CONNECT tunnel hides the method and path */
  readonly method?: string;
  readonly path?: string;
  /** the time of the decision (ms since the epoch): approvals are in force strictly before they expire */
  readonly now: number;
}

const ANONYMOUS_DENIED: Decision = Object.freeze(deny('anonymous_denied', null));
const NO_MATCHING_RULE: Decision = Object.freeze(deny('no_matching_rule', null));
const NO_VALID_BUNDLE: Decision = Object.freeze(deny('no_valid_bundle', null));
const LEARN_UNMATCHED: Decision = Object.freeze({ verdict: 'learn', reason: 'learn_unmatched', ruleId: null });

/**
 * Order: anonymous refusal, then any deny rule (deny beats allow whatever the file order), then
 * the blocklist (only an allow rule with override_blocklist, or an approval granted with
 * override_blocklist, passes it), then the first allow rule, then an approval in force, then the
 * agent's mode. An approval fills a gap the rules leave; it never overturns a deny rule. A rule constrained by method or path never allows what it cannot
 * see (CONNECT), but a deny rule so constrained denies it (fail closed).
 */
export function decide(policy: Policy, args: DecideArgs): Decision {
  const decision = enforced(policy, args);
  if (policy.shadow === undefined) return decision;
  return { ...decision, shadow: shadowVerdict(policy, policy.shadow, args) };
}

function enforced(policy: Policy, args: DecideArgs): Decision {
  if (policy.noValidBundle === true) return NO_VALID_BUNDLE;
  return byRules(policy, policy.rules, args);
}

function byRules(policy: Policy, rules: RuleSet, args: DecideArgs): Decision {
  const { agent } = args;
  if (agent.via === 'anonymous' && !policy.anonymousAllowed) return ANONYMOUS_DENIED;
  const denied = rules.firstMatch('deny', args);
  if (denied !== undefined) return denied.decision;
  const allowed = rules.firstMatch('allow', args);
  const listed = policy.blocklist?.match(args.destination.host) ?? null;
  if (listed !== null) return listedDecision(policy, args, listed, allowed?.overrideBlocklist === true ? allowed.id : null);
  if (allowed !== undefined) return allowed.decision;
  const approval = policy.approvals?.find(agent.name, args.destination.host, args.destination.port, args.now);
  if (approval !== undefined) return { verdict: 'allow', reason: 'approval_allow', ruleId: approvalRuleId(approval), approval: approval.id };
  return agent.mode === 'strict' ? NO_MATCHING_RULE : LEARN_UNMATCHED;
}

function approvalRuleId(approval: Approval): string {
  return `approval:${approval.id}`;
}

/** A listed host or address: an override rule, else an approval granted to pass the blocklist, else denied. */
function listedDecision(policy: Policy, args: DecideArgs, listed: BlocklistMatch, overrideRuleId: string | null): Decision {
  if (overrideRuleId !== null) return blocklistDecision(listed, overrideRuleId);
  const approval = policy.approvals?.find(args.agent.name, args.destination.host, args.destination.port, args.now, true);
  if (approval !== undefined) return { verdict: 'allow', reason: 'blocklist_override', ruleId: approvalRuleId(approval), listedBy: listed, approval: approval.id };
  return blocklistDecision(listed, null);
}

/** A listed host or address: denied naming the source, unless an override rule passes it. */
export function blocklistDecision(listedBy: BlocklistMatch, overrideRuleId: string | null): Decision {
  if (overrideRuleId !== null) return { verdict: 'allow', reason: 'blocklist_override', ruleId: overrideRuleId, listedBy };
  return { verdict: 'deny', reason: 'blocklisted', ruleId: `blocklist:${listedBy.source}`, listedBy };
}

function shadowVerdict(policy: Policy, shadow: NonNullable<Policy['shadow']>, args: DecideArgs): ShadowVerdict {
  const would = byRules(policy, shadow.rules, args);
  return { version: shadow.version, wouldDeny: would.verdict === 'deny', reason: would.reason, ruleId: would.ruleId };
}

/**
 * The blocklist's IP entries, applied to the addresses a name resolved to, so a listed address
 * cannot be reached through an innocent name. Keeps a decision that is already a deny.
 */
export function decideAddresses(policy: Policy, args: DecideArgs, decision: Decision, addresses: readonly string[]): Decision {
  if (policy.blocklist === undefined || decision.verdict === 'deny') return decision;
  for (const address of addresses) {
    const listed = policy.blocklist.matchAddress(address);
    if (listed === null) continue;
    const allowed = policy.rules.firstMatch('allow', args);
    const outcome = listedDecision(policy, args, listed, allowed?.overrideBlocklist === true ? allowed.id : null);
    return decision.shadow === undefined ? outcome : { ...outcome, shadow: decision.shadow };
  }
  return decision;
}
