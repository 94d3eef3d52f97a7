// Time-boxed approvals as decide() sees them: an immutable index by agent, consulted with the
// decision's own `now`, so an approval stops working the millisecond it expires.
import type { ApprovalFacts } from '../audit/kinds.js';

export type Approval = ApprovalFacts;

export class ApprovalIndex {
  static readonly EMPTY = new ApprovalIndex([]);
  readonly #byAgent = new Map<string, Approval[]>();

  constructor(readonly all: readonly Approval[]) {
    for (const approval of all) this.#byAgent.set(approval.agent, [...(this.#byAgent.get(approval.agent) ?? []), approval]);
    Object.freeze(this);
  }

  get size(): number {
    return this.all.length;
  }

  /** An approval in force at `now` for this agent and destination; `overridingBlocklist` asks for one that may pass a listed host. */
  find(agent: string, host: string, port: number, now: number, overridingBlocklist = false): Approval | undefined {
    const candidates = this.#byAgent.get(agent);
    if (candidates === undefined) return undefined;
    return candidates.find(
      (approval) => approval.host === host && (approval.port === null || approval.port === port) && now < approval.expiresMs && (!overridingBlocklist || approval.overrideBlocklist),
    );
  }
}
