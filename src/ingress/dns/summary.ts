// Folds the DNS queries not worth a record each (floods, malformed, unscreened names) into one
// `dns_summary` audit record per interval: counts per agent or peer and outcome, never a name.
import { dnsSummaryEntry, type AuditLog } from '../../audit/kinds.js';
import { PeriodicSummary } from '../../audit/periodic-summary.js';
import type { Schedule } from '../../audit/schedule.js';
import type { Logger } from '../../obs/log.js';
import type { DnsOutcome } from './handle-query.js';

/** Distinct (agent, peer, outcome) rows per summary; peer addresses are not config-bounded. */
const MAX_ROWS = 256;

interface Row {
  readonly agent: string | null;
  readonly peer: string;
  readonly outcome: DnsOutcome;
}

export interface DnsSummaryOptions {
  readonly chain: AuditLog;
  readonly intervalMs: number;
  readonly schedule?: Schedule;
  readonly now?: () => Date;
  readonly log?: Logger;
}

export class DnsSummary {
  readonly #summary: PeriodicSummary<Row>;

  constructor(options: DnsSummaryOptions) {
    this.#summary = new PeriodicSummary<Row>({
      audit: options.chain,
      intervalMs: options.intervalMs,
      maxRows: MAX_ROWS,
      entry: dnsSummaryEntry,
      what: 'DNS summary',
      ...(options.schedule === undefined ? {} : { schedule: options.schedule }),
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
  }

  /** Adds queries to the current interval, whose summary is written when the interval ends. */
  count(agent: string | null, peer: string, outcome: DnsOutcome, queries = 1): void {
    this.#summary.count(`${agent ?? ''}\n${peer}\n${outcome}`, { agent, peer, outcome }, queries);
  }

  /** Writes the last summary; nothing is scheduled after this. */
  close(): Promise<void> {
    return this.#summary.close();
  }

  /** Writes what was counted so far; if the chain refuses it, the counts stay for the next try. */
  flush(): Promise<void> {
    return this.#summary.flush();
  }
}
