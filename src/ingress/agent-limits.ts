// Per-agent admission limits (agents[].limits): a token bucket on the request rate and a cap on
// requests in progress, so one agent's flood never takes another agent's share of Sluice.
import { agentLimitSummaryEntry, type AuditLog } from '../audit/kinds.js';
import { realTimer, type Schedule, type Scheduled } from '../audit/schedule.js';
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
  #counts = new Map<string, { readonly agent: string; readonly limit: AgentLimit; count: number }>();
  #since: Date | null = null;
  #timer: Scheduled | null = null;
  #closed = false;

  constructor(
    agents: readonly AgentConfig[],
    private readonly options: AgentLimitsOptions,
  ) {
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
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Writes the refusals counted so far as one record; if the chain refuses it, they wait for the next. */
  async flush(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = null;
    const since = this.#since;
    if (since === null) return;
    const rows = [...this.#counts.values()].map(({ agent, limit, count }) => ({ agent, limit, count }));
    this.#counts = new Map();
    this.#since = null;
    try {
      await this.options.audit.append(agentLimitSummaryEntry(since, rows));
    } catch (error) {
      this.options.log?.warn({ err: error }, 'agent limit summary could not be audited; its counts are kept for the next one');
      for (const row of rows) this.#count(row.agent, row.limit, row.count);
      this.#since = since;
    }
  }

  #refused(agent: string, limit: AgentLimit): void {
    this.options.metrics.agentLimited.inc({ agent, limit });
    this.#count(agent, limit, 1);
  }

  #count(agent: string, limit: AgentLimit, refusals: number): void {
    const key = `${agent}\n${limit}`;
    const row = this.#counts.get(key);
    if (row !== undefined) row.count += refusals;
    else this.#counts.set(key, { agent, limit, count: refusals });
    this.#since ??= new Date();
    // Timed from the first refusal, so an agent within its limits costs no timer and no record.
    if (this.#closed) return;
    this.#timer ??= (this.options.schedule ?? realTimer)(() => {
      this.#timer = null;
      void this.flush();
    }, this.options.summaryIntervalMs ?? 60_000);
  }
}
