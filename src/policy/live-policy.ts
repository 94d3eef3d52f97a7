// The policy in force, swapped atomically: local rules or a verified bundle's, the blocklist,
// an optional report-mode shadow, approvals, or "no valid bundle". Each change builds a new frozen Policy.
import { ApprovalIndex } from './approvals.js';
import type { BlocklistSet } from './blocklist/set.js';
import type { Policy } from './decide.js';
import type { RuleSet } from './rule-set.js';

type RuleSource = { readonly kind: 'local' } | { readonly kind: 'bundle'; readonly rules: RuleSet; readonly version: number } | { readonly kind: 'none' };

export class LivePolicy {
  #policy: Policy;
  #source: RuleSource;
  #blocklist: BlocklistSet | undefined;
  #shadow: Policy['shadow'];
  #approvals = ApprovalIndex.EMPTY;

  /** `awaitingBundle`: a bundle is configured, so nothing is allowed until one verifies or the offline mode decides. */
  constructor(
    private local: RuleSet,
    private readonly anonymousAllowed: boolean,
    awaitingBundle: boolean,
  ) {
    this.#source = awaitingBundle ? { kind: 'none' } : { kind: 'local' };
    this.#policy = this.build();
  }

  /** Read once per request; the object never changes under a reader. */
  get current(): Policy {
    return this.#policy;
  }

  /** Rules in force now (for the rules-loaded gauge). */
  get ruleCount(): number {
    return this.#policy.noValidBundle === true ? 0 : this.#policy.rules.size;
  }

  useBundle(rules: RuleSet, version: number): void {
    this.#source = { kind: 'bundle', rules, version };
    this.#policy = this.build();
  }

  /** New local rule files (a reload); they decide only where local rules are in force. */
  replaceLocalRules(rules: RuleSet): void {
    this.local = rules;
    this.#policy = this.build();
  }

  useLocalRules(): void {
    this.#source = { kind: 'local' };
    this.#policy = this.build();
  }

  denyAll(): void {
    this.#source = { kind: 'none' };
    this.#policy = this.build();
  }

  setShadow(rules: RuleSet | null, version: number | null): void {
    this.#shadow = rules === null || version === null ? undefined : { rules, version };
    this.#policy = this.build();
  }

  setBlocklist(blocklist: BlocklistSet): void {
    this.#blocklist = blocklist;
    this.#policy = this.build();
  }

  /** Approvals granted, revoked or expired: the next request sees the new set. */
  setApprovals(approvals: ApprovalIndex): void {
    this.#approvals = approvals;
    this.#policy = this.build();
  }

  private build(): Policy {
    const source = this.#source;
    return Object.freeze({
      rules: source.kind === 'bundle' ? source.rules : this.local,
      anonymousAllowed: this.anonymousAllowed,
      ...(source.kind === 'bundle' ? { bundleVersion: source.version } : {}),
      ...(source.kind === 'none' ? { noValidBundle: true } : {}),
      ...(this.#blocklist === undefined ? {} : { blocklist: this.#blocklist }),
      ...(this.#shadow === undefined ? {} : { shadow: this.#shadow }),
      ...(this.#approvals.size === 0 ? {} : { approvals: this.#approvals }),
    });
  }
}
