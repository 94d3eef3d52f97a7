// Folds events not worth a record each (DNS floods, agents over their limits) into one audit
// record per interval: counts by row, timed from the first event, kept for the next try on failure.
import type { AuditEntry, AuditLog } from './kinds.js';
import { realTimer, type Schedule, type Scheduled } from './schedule.js';
import type { Logger } from '../obs/log.js';

export type Counted<Fields> = Fields & { count: number };

export interface PeriodicSummaryOptions<Fields> {
  readonly audit: AuditLog;
  readonly intervalMs: number;
  /** the record written for one interval: when it began, its rows, events past `maxRows` */
  readonly entry: (since: Date, rows: Counted<Fields>[], overflow: number) => AuditEntry;
  /** distinct rows itemised per interval; later new rows only add to `overflow` */
  readonly maxRows?: number;
  readonly schedule?: Schedule;
  readonly now?: () => Date;
  readonly log?: Logger;
  /** names the summary in the warning logged when the chain refuses it */
  readonly what: string;
}

export class PeriodicSummary<Fields extends object> {
  #rows = new Map<string, Counted<Fields>>();
  #overflow = 0;
  #since: Date | null = null;
  #timer: Scheduled | null = null;
  #closed = false;

  constructor(private readonly options: PeriodicSummaryOptions<Fields>) {}

  /** Adds `events` to the row `key` names (created from `fields` the first time in an interval). */
  count(key: string, fields: Fields, events = 1): void {
    const row = this.#rows.get(key);
    if (row !== undefined) row.count += events;
    else if (this.#rows.size < (this.options.maxRows ?? Number.POSITIVE_INFINITY)) this.#rows.set(key, { ...fields, count: events });
    else this.#overflow += events;
    this.#since ??= (this.options.now ?? (() => new Date()))();
    // Timed from the first event, so a quiet interval keeps no timer and writes nothing.
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
    const rows = [...this.#rows.entries()];
    const overflow = this.#overflow;
    this.#rows = new Map();
    this.#overflow = 0;
    this.#since = null;
    try {
      await this.options.audit.append(this.options.entry(since, rows.map(([, row]) => row), overflow));
    } catch (error) {
      this.options.log?.warn({ err: error }, `${this.options.what} could not be audited; its counts are kept for the next one`);
      for (const [key, row] of rows) this.count(key, row, row.count);
      this.#overflow += overflow;
      this.#since = since;
    }
  }
}
