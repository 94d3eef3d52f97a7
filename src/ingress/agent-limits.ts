// Per-agent admission limits (agents[].limits): a token bucket on the request rate and a cap on
// requests in progress, so one agent's flood never takes another agent's share of Sluice.
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

interface AgentState {
  /** one key (the agent) per bucket: each agent has its own rate */
  readonly bucket: KeyedTokenBucket | undefined;
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
      const bucket = perSecond === undefined ? undefined : new KeyedTokenBucket(perSecond, limits.burst ?? Math.max(1, Math.ceil(perSecond)), options.now, 1);
      this.#agents.set(agent.name, { bucket, maxConcurrent: limits.max_concurrent, active: 0 });
    }
  }

  /** Takes a token and a concurrency slot for `agent`, or says which limit refused it and when to retry. */
  admit(agent: string): LimitOutcome {
    const state = this.#agents.get(agent);
    if (state === undefined) return ADMITTED_UNLIMITED;
    if (state.maxConcurrent !== undefined && state.active >= state.maxConcurrent) {
      this.#refused(agent, 'concurrency');
      return { admitted: false, code: 'AGENT_CONNECTION_LIMIT', retryAfterSeconds: 1 };
    }
    if (state.bucket !== undefined && !state.bucket.take(agent)) {
      this.#refused(agent, 'rate');
      return { admitted: false, code: 'AGENT_RATE_LIMITED', retryAfterSeconds: Math.max(1, Math.ceil(state.bucket.waitMs(agent) / 1000)) };
    }
    state.active += 1;
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        state.active -= 1;
      },
    };
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
