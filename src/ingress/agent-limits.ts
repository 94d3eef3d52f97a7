// Per-agent admission limits (agents[].limits): a token bucket on the request rate and a cap on
// requests in progress, so one agent's flood never takes another agent's share of Sluice. In a
// fleet the bucket is shared (SharedRate); the cap on requests in progress stays per replica.
import { agentLimitSummaryEntry, type AuditLog } from '../audit/kinds.js';
import { PeriodicSummary } from '../audit/periodic-summary.js';
import type { Schedule } from '../audit/schedule.js';
import type { AgentConfig } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { KeyedTokenBucket } from './dns/rate-limiter.js';

export type AgentLimit = 'rate' | 'concurrency';

export type LimitOutcome =
  | { readonly admitted: true; readonly release: () => void }
  | { readonly admitted: false; readonly code: 'AGENT_RATE_LIMITED' | 'AGENT_CONNECTION_LIMIT'; readonly retryAfterSeconds: number };

/** A request-rate bucket per agent shared by a fleet. */
export interface SharedRate {
  /** takes one token from `agent`'s bucket; null when the store cannot answer */
  take(agent: string, perSecond: number, burst: number): Promise<{ readonly admitted: boolean; readonly waitMs: number } | null>;
}

interface AgentState {
  /** one key (the agent) per bucket: each agent has its own rate */
  readonly bucket: KeyedTokenBucket | undefined;
  readonly rate: { readonly perSecond: number; readonly burst: number } | undefined;
  readonly maxConcurrent: number | undefined;
  active: number;
}

export interface AgentLimitsOptions {
  readonly audit: AuditLog;
  readonly metrics: Pick<Metrics, 'agentLimited'>;
  readonly log?: Logger;
  /** refusals are audited as one summary per interval, not one record each */
  readonly summaryIntervalMs?: number;
  readonly schedule?: Schedule;
  readonly now?: () => number;
  /** a fleet's shared buckets; while they cannot answer, each replica's own bucket limits alone */
  readonly shared?: SharedRate;
}

const ADMITTED_UNLIMITED: LimitOutcome = Object.freeze({ admitted: true, release: () => undefined });

export class AgentLimits {
  readonly #agents = new Map<string, AgentState>();
  readonly #summary: PeriodicSummary<{ readonly agent: string; readonly limit: AgentLimit }>;

  constructor(
    agents: readonly AgentConfig[],
    private readonly options: AgentLimitsOptions,
  ) {
    this.#summary = new PeriodicSummary({
      audit: options.audit,
      intervalMs: options.summaryIntervalMs ?? 60_000,
      entry: (since, rows) => agentLimitSummaryEntry(since, rows),
      what: 'agent limit summary',
      ...(options.schedule === undefined ? {} : { schedule: options.schedule }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
    for (const agent of agents) {
      const limits = agent.limits;
      if (limits?.requests_per_second === undefined && limits?.max_concurrent === undefined) continue;
      const perSecond = limits.requests_per_second;
      const rate = perSecond === undefined ? undefined : { perSecond, burst: limits.burst ?? Math.max(1, Math.ceil(perSecond)) };
      const bucket = rate === undefined ? undefined : new KeyedTokenBucket(rate.perSecond, rate.burst, options.now, 1);
      this.#agents.set(agent.name, { bucket, rate, maxConcurrent: limits.max_concurrent, active: 0 });
    }
  }

  /** Takes a token and a concurrency slot for `agent`, or says which limit refused it and when to retry. */
  async admit(agent: string): Promise<LimitOutcome> {
    const state = this.#agents.get(agent);
    if (state === undefined) return ADMITTED_UNLIMITED;
    if (state.maxConcurrent !== undefined && state.active >= state.maxConcurrent) {
      this.#refused(agent, 'concurrency');
      return { admitted: false, code: 'AGENT_CONNECTION_LIMIT', retryAfterSeconds: 1 };
    }
    // The slot is taken before the rate is asked, so requests racing through the await cannot pass the cap together.
    state.active += 1;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      state.active -= 1;
    };
    const waitMs = await this.#rateWait(agent, state);
    if (waitMs !== null) {
      release();
      this.#refused(agent, 'rate');
      return { admitted: false, code: 'AGENT_RATE_LIMITED', retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    }
    return { admitted: true, release };
  }

  /** null when `agent` may go now, else how long until its bucket has a token. */
  async #rateWait(agent: string, state: AgentState): Promise<number | null> {
    if (state.bucket === undefined || state.rate === undefined) return null;
    const shared = await this.options.shared?.take(agent, state.rate.perSecond, state.rate.burst);
    if (shared !== undefined && shared !== null) return shared.admitted ? null : shared.waitMs;
    return state.bucket.take(agent) ? null : state.bucket.waitMs(agent);
  }

  /** Writes the last summary; nothing is scheduled after this. */
  close(): Promise<void> {
    return this.#summary.close();
  }

  /** Writes the refusals counted so far as one record; if the chain refuses it, they wait for the next. */
  flush(): Promise<void> {
    return this.#summary.flush();
  }

  #refused(agent: string, limit: AgentLimit): void {
    this.options.metrics.agentLimited.inc({ agent, limit });
    this.#summary.count(`${agent}\n${limit}`, { agent, limit });
  }
}
