// Folds the DNS queries not worth a record each (floods, malformed, unscreened names) into one
// `dns_summary` audit record per interval: counts per agent or peer and outcome, never a name.
import { dnsSummaryEntry, type AuditLog } from '../../audit/kinds.js';
import { realTimer, type Schedule, type Scheduled } from '../../audit/schedule.js';
import type { Logger } from '../../obs/log.js';
import type { DnsOutcome } from './handle-query.js';

/** Distinct (agent, peer, outcome) rows per summary; peer addresses are not config-bounded. */
const MAX_ROWS = 256;

interface Row {
  readonly agent: string | null;
  readonly peer: string;
  readonly outcome: DnsOutcome;
  count: number;
}

export interface DnsSummaryOptions {
  readonly chain: AuditLog;
  readonly intervalMs: number;
  readonly schedule?: Schedule;
  readonly now?: () => Date;
  readonly log?: Logger;
}

export class DnsSummary {
  #rows = new Map<string, Row>();
  /** queries counted after MAX_ROWS rows were in use: in the total, not itemised */
  #overflow = 0;
  #since: Date | null = null;
  #timer: Scheduled | null = null;
  #closed = false;

  constructor(private readonly options: DnsSummaryOptions) {}

  /** Adds queries to the current interval, whose summary is written when the interval ends. */
  count(agent: string | null, peer: string, outcome: DnsOutcome, queries = 1): void {
    const key = `${agent ?? ''}\n${peer}\n${outcome}`;
    const row = this.#rows.get(key);
    if (row !== undefined) row.count += queries;
    else if (this.#rows.size < MAX_ROWS) this.#rows.set(key, { agent, peer, outcome, count: queries });
    else this.#overflow += queries;
    this.#since ??= (this.options.now ?? (() => new Date()))();
    // Timed from the first query counted, so a quiet server keeps no timer and writes nothing.
    if (this.#closed) return;
    this.#timer ??= (this.options.schedule ?? realTimer)(() => {
      this.#timer = null;
      void this.flush();
    }, this.options.intervalMs);
  }

  /** Writes the last summary; nothing is scheduled after this. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Writes what was counted so far; if the chain refuses it, the counts stay for the next try. */
  async flush(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = null;
    const since = this.#since;
    if (since === null) return;
    const rows = [...this.#rows.values()];
    const overflow = this.#overflow;
    this.#rows = new Map();
    this.#overflow = 0;
    this.#since = null;
    try {
      await this.options.chain.append(dnsSummaryEntry(since, rows.map(({ agent, peer, outcome, count }) => ({ agent, peer, outcome, count })), overflow));
    } catch (error) {
      this.options.log?.warn({ err: error }, 'DNS summary could not be audited; its counts are kept for the next one');
      for (const row of rows) this.count(row.agent, row.peer, row.outcome, row.count);
      if (overflow > 0) this.#overflow += overflow;
      this.#since = since;
    }
  }
}
