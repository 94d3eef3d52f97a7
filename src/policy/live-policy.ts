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
  readonly #listeners = new Set<(policy: Policy) => void>();

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

  /** Called with each new policy once it is in force (held requests are decided again); returns the unsubscribe. */
  onChange(listener: (policy: Policy) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  useBundle(rules: RuleSet, version: number): void {
    this.#source = { kind: 'bundle', rules, version };
    this.swap();
  }

  /** New local rule files (a reload); they decide only where local rules are in force. */
  replaceLocalRules(rules: RuleSet): void {
    this.local = rules;
    this.swap();
  }

  useLocalRules(): void {
    this.#source = { kind: 'local' };
    this.swap();
  }

  denyAll(): void {
    this.#source = { kind: 'none' };
    this.swap();
  }

  setShadow(rules: RuleSet | null, version: number | null): void {
    this.#shadow = rules === null || version === null ? undefined : { rules, version };
    this.swap();
  }

  setBlocklist(blocklist: BlocklistSet): void {
    this.#blocklist = blocklist;
    this.swap();
  }

  private swap(): void {
    this.#policy = this.build();
    for (const listener of this.#listeners) listener(this.#policy);
  }

  /** Approvals granted, revoked or expired: the next request (and every held one) sees the new set. */
  setApprovals(approvals: ApprovalIndex): void {
    this.#approvals = approvals;
    this.swap();
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
