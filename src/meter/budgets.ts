// Token budgets per agent and per group in UTC windows: reserve a call's worst case before it is
// sent, settle with what it used. Concurrent calls thus overshoot by no more than their own
// reservations, and an output bound is clamped to what is left rather than the call refused.
import type { Agent } from '../agent.js';
import type { BudgetConfig } from '../config/schema.js';
import type { UsageRecord } from './budget-store.js';
import { windowEnd, windowStart, WINDOWS, type Window } from './windows.js';

export interface Limits {
  readonly per_request?: number | undefined;
  readonly hourly?: number | undefined;
  readonly daily?: number | undefined;
  readonly monthly?: number | undefined;
}

interface Tally {
  start: number;
  used: number;
}

interface SubjectState {
  readonly tallies: Record<Window, Tally>;
  reserved: number;
}

export interface Reservation {
  readonly subjects: readonly string[];
  readonly tokens: number;
  /** the shared store's name for it (Redis); the embedded ledger needs none */
  readonly id?: string;
}

export type Plan =
  | { readonly kind: 'go'; readonly bound: number | undefined; readonly reservation: Reservation }
  | { readonly kind: 'over'; readonly limit: Window | 'per_request'; readonly subject: string; readonly retryAfterSeconds: number | undefined };

export interface PlanRequest {
  readonly agent: Agent;
  readonly inputEstimate: number;
  /** per choice, as the agent asked; undefined when it set none */
  readonly outputBound: number | undefined;
  readonly choices: number;
  /** injected when the agent set no bound and no per_request limit caps it */
  readonly defaultBound: number;
}

export interface WindowReport {
  readonly limit: number | null;
  readonly used: number;
  readonly reserved: number;
  readonly remaining: number | null;
  /** ISO time the window resets */
  readonly resets_at: string;
}

export interface BudgetReport {
  /** `agent:NAME` or `group:NAME` */
  readonly subject: string;
  readonly per_request: number | null;
  readonly windows: Record<Window, WindowReport>;
}

/** What a subject has spent in each window as of now, and what calls in flight hold reserved. */
export interface Standing {
  readonly used: Readonly<Record<Window, number>>;
  readonly reserved: number;
}

/**
 * The configured limits and the decision a call gets against a subject's standing. Pure: the
 * embedded ledger and the Redis accounts both decide with it, so a fleet decides as one host does.
 */
export class BudgetLimits {
  private readonly limits = new Map<string, Limits>();

  constructor(budgets: readonly BudgetConfig[]) {
    for (const budget of budgets) {
      const subject = budget.agent !== undefined ? `agent:${budget.agent}` : `group:${budget.group ?? ''}`;
      this.limits.set(subject, budget);
    }
  }

  /** Every subject that has a limit. */
  get subjects(): readonly string[] {
    return [...this.limits.keys()];
  }

  limitsOf(subject: string): Limits | undefined {
    return this.limits.get(subject);
  }

  /** The budgets a call by `agent` is charged to: its own, and each of its groups' that has one. */
  subjectsOf(agent: Agent): string[] {
    return [`agent:${agent.name}`, ...agent.groups.map((group) => `group:${group}`).filter((subject) => this.limits.has(subject))];
  }

  /** Whether any limit applies to `agent` (Realtime sessions are refused for such agents). */
  isBudgeted(agent: Agent): boolean {
    return this.subjectsOf(agent).some((subject) => this.limits.has(subject));
  }

  /**
   * Decides a call: the output bound to send (lowered or injected to fit what every budget has
   * left) and the tokens to reserve, or which limit it is over and when that limit resets.
   */
  plan(request: PlanRequest, at: number, standing: (subject: string) => Standing): Plan {
    const subjects = this.subjectsOf(request.agent);
    let room = Number.POSITIVE_INFINITY;
    let tightest: { limit: Window | 'per_request'; subject: string } | undefined;
    for (const subject of subjects) {
      const limits = this.limits.get(subject);
      if (limits === undefined) continue;
      const spent = standing(subject);
      if (limits.per_request !== undefined && limits.per_request < room) {
        room = limits.per_request;
        tightest = { limit: 'per_request', subject };
      }
      for (const window of WINDOWS) {
        const limit = limits[window];
        if (limit === undefined) continue;
        const left = limit - spent.used[window] - spent.reserved;
        if (left < room) {
          room = left;
          tightest = { limit: window, subject };
        }
      }
    }
    const choices = request.choices;
    const fits = Math.floor((room - request.inputEstimate) / choices);
    if (tightest !== undefined && fits < 1) {
      const retryAfterSeconds = tightest.limit === 'per_request' ? undefined : Math.max(1, Math.ceil((windowEnd(tightest.limit, at) - at) / 1000));
      return { kind: 'over', limit: tightest.limit, subject: tightest.subject, retryAfterSeconds };
    }
    const asked = request.outputBound ?? (tightest === undefined ? undefined : request.defaultBound);
    const bound = asked === undefined ? undefined : Math.min(asked, fits);
    const tokens = request.inputEstimate + (bound ?? 0) * choices;
    return { kind: 'go', bound, reservation: { subjects, tokens } };
  }

  /** The report of one subject as of `at`. */
  report(subject: string, standing: Standing, at: number): BudgetReport {
    const limits = this.limits.get(subject) ?? {};
    const windows = Object.fromEntries(
      WINDOWS.map((window) => {
        const limit = limits[window] ?? null;
        const used = standing.used[window];
        const remaining = limit === null ? null : Math.max(0, limit - used - standing.reserved);
        return [window, { limit, used, reserved: standing.reserved, remaining, resets_at: new Date(windowEnd(window, at)).toISOString() }];
      }),
    ) as Record<Window, WindowReport>;
    return { subject, per_request: limits.per_request ?? null, windows };
  }
}

/** The embedded ledger: every subject's tallies in this process, rebuilt from the journal at start. */
export class BudgetLedger {
  readonly limits: BudgetLimits;
  private readonly states = new Map<string, SubjectState>();

  constructor(
    budgets: readonly BudgetConfig[],
    private readonly now: () => number,
  ) {
    this.limits = new BudgetLimits(budgets);
  }

  private state(subject: string): SubjectState {
    let state = this.states.get(subject);
    if (state === undefined) {
      const tallies = { hourly: { start: 0, used: 0 }, daily: { start: 0, used: 0 }, monthly: { start: 0, used: 0 } };
      state = { tallies, reserved: 0 };
      this.states.set(subject, state);
    }
    return state;
  }

  /** The tally of `window` as of `at`: a window that has rolled over starts from zero. */
  private tally(state: SubjectState, window: Window, at: number): Tally {
    const tally = state.tallies[window];
    const start = windowStart(window, at);
    if (tally.start < start) {
      tally.start = start;
      tally.used = 0;
    }
    return tally;
  }

  private standing(subject: string, at: number): Standing {
    const state = this.state(subject);
    return { used: { hourly: this.tally(state, 'hourly', at).used, daily: this.tally(state, 'daily', at).used, monthly: this.tally(state, 'monthly', at).used }, reserved: state.reserved };
  }

  /** Replays settled usage from the journal at start. */
  load(records: readonly UsageRecord[]): void {
    for (const record of records) this.add(record.subjects, record.input + record.output, record.at);
  }

  private add(subjects: readonly string[], tokens: number, at: number): void {
    for (const subject of subjects) {
      const state = this.state(subject);
      for (const window of WINDOWS) {
        const tally = this.tally(state, window, at);
        // A record from an earlier window than the tally's (replayed out of order) counts nowhere now.
        if (windowStart(window, at) === tally.start) tally.used += tokens;
      }
    }
  }

  /** Decides a call (BudgetLimits.plan) and holds its reservation until it settles. */
  plan(request: PlanRequest): Plan {
    const at = this.now();
    const plan = this.limits.plan(request, at, (subject) => this.standing(subject, at));
    if (plan.kind === 'go') for (const subject of plan.reservation.subjects) this.state(subject).reserved += plan.reservation.tokens;
    return plan;
  }

  /** Releases a reservation and counts what the call really used, now. */
  settle(reservation: Reservation, used: number): void {
    for (const subject of reservation.subjects) {
      const state = this.state(subject);
      state.reserved = Math.max(0, state.reserved - reservation.tokens);
    }
    this.add(reservation.subjects, used, this.now());
  }

  /** Every budgeted subject and every agent that has used tokens: limits, used, remaining, resets. */
  report(): BudgetReport[] {
    const at = this.now();
    const subjects = new Set([...this.limits.subjects, ...this.states.keys()]);
    return [...subjects].sort().map((subject) => this.limits.report(subject, this.standing(subject, at), at));
  }
}
