// Hold-and-ask (agents[].on_unknown: hold): a Strict-mode request no rule decided waits, and is
// decided again on every policy change, until something decides it or its time runs out.
import type { AgentConfig } from '../config/schema.js';
import { realTimer, type Schedule, type Scheduled } from '../audit/schedule.js';
import type { Metrics } from '../obs/metrics.js';
import { decide, type DecideArgs, type Policy } from './decide.js';
import { deny, type Decision } from './decision.js';

/** What a held request waits on: the policy in force, and word of each change to it. */
export interface PolicySource {
  readonly current: Policy;
  onChange(listener: (policy: Policy) => void): () => void;
}

/** What tells a held request its client hung up: an HTTP response's `close` (the parser keeps reading the socket). */
export interface ClosingClient {
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

export interface HoldOutcome {
  /** the policy the final decision was taken under: the request proceeds on this snapshot */
  readonly policy: Policy;
  readonly decision: Decision;
}

export interface HeldRequestsOptions {
  /** requests held at once, all agents together (approvals.max_held) */
  readonly maxHeld: number;
  /** requests one agent may have held at once (approvals.max_held_per_agent): no agent fills the hold for the others */
  readonly maxHeldPerAgent: number;
  readonly schedule?: Schedule;
  readonly metrics?: Pick<Metrics, 'held'>;
  /** the decision clock (approvals expire by it); a held request is decided again at the time of the change */
  readonly now?: () => number;
}

interface Waiter {
  readonly args: DecideArgs;
  readonly timer: Scheduled;
  readonly finish: (outcome: HoldOutcome) => void;
}

const HOLD_TIMEOUT: Decision = Object.freeze(deny('hold_timeout', null));
const HOLD_FULL: Decision = Object.freeze(deny('hold_full', null));

export class HeldRequests {
  readonly #timeouts = new Map<string, number>();
  readonly #waiters = new Set<Waiter>();
  readonly #perAgent = new Map<string, number>();
  readonly #unsubscribe: () => void;

  constructor(
    agents: readonly AgentConfig[],
    private readonly policy: PolicySource,
    private readonly options: HeldRequestsOptions,
  ) {
    for (const agent of agents) if (agent.on_unknown === 'hold') this.#timeouts.set(agent.name, agent.hold_timeout_ms);
    this.#unsubscribe = policy.onChange((next) => this.#redecide(next));
  }

  /** Whether `agent` asked for its unknown destinations to be held rather than refused. */
  holds(agent: string): boolean {
    return this.#timeouts.has(agent);
  }

  /** Requests waiting now. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Waits until a policy decides `args` other than "no rule" (allowed by a new rule, or denied by
   * one), or the agent's hold_timeout_ms passes (hold_timeout), or at once when the hold is full.
   */
  wait(args: DecideArgs, client?: ClosingClient): Promise<HoldOutcome> {
    const agent = args.agent.name;
    const timeoutMs = this.#timeouts.get(agent);
    if (timeoutMs === undefined) return Promise.resolve(this.#inForce(args));
    const heldForAgent = this.#perAgent.get(agent) ?? 0;
    if (this.#waiters.size >= this.options.maxHeld || heldForAgent >= this.options.maxHeldPerAgent) return Promise.resolve({ policy: this.policy.current, decision: HOLD_FULL });
    return new Promise((resolve) => {
      // A client that hung up gives its place back at once, not at its timeout.
      const onGone = (): void => waiter.finish(this.#inForce(args));
      const waiter: Waiter = {
        args,
        timer: (this.options.schedule ?? realTimer)(() => waiter.finish({ policy: this.policy.current, decision: HOLD_TIMEOUT }), timeoutMs),
        finish: (outcome) => {
          if (!this.#waiters.delete(waiter)) return;
          this.#perAgent.set(agent, (this.#perAgent.get(agent) ?? 1) - 1);
          waiter.timer.cancel();
          client?.off('close', onGone);
          this.options.metrics?.held.set(this.#waiters.size);
          resolve(outcome);
        },
      };
      this.#waiters.add(waiter);
      this.#perAgent.set(agent, heldForAgent + 1);
      client?.once('close', onGone);
      this.options.metrics?.held.set(this.#waiters.size);
    });
  }

  /** Ends the holds `matches` picks with the decision of the policy in force (a human denied their request). */
  release(matches: (args: DecideArgs) => boolean): void {
    for (const waiter of [...this.#waiters]) if (matches(waiter.args)) waiter.finish(this.#inForce(waiter.args));
  }

  /** Stopping: every held request is answered now, as the policy in force decides it. */
  close(): void {
    this.#unsubscribe();
    this.release(() => true);
  }

  /** The decision of the policy in force, now. */
  #inForce(args: DecideArgs): HoldOutcome {
    const policy = this.policy.current;
    return { policy, decision: this.#decideNow(policy, args) };
  }

  #decideNow(policy: Policy, args: DecideArgs): Decision {
    return decide(policy, this.options.now === undefined ? args : { ...args, now: this.options.now() });
  }

  #redecide(policy: Policy): void {
    for (const waiter of [...this.#waiters]) {
      const decision = this.#decideNow(policy, waiter.args);
      if (decision.verdict !== 'deny' || decision.reason !== 'no_matching_rule') waiter.finish({ policy, decision });
    }
  }
}
