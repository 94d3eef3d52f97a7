// Failed admin logins: counted per peer address, refused with 429 past a limit, and audited as one
// summary record per interval so a password-spraying flood cannot flood the audit chain too.
import type { Schedule, Scheduled } from '../audit/schedule.js';

export type AuthFailureReason = 'missing_token' | 'unknown_token' | 'insufficient_role';

/** Distinct (peer, reason) rows per summary; peers are not config-bounded, so the rest is a count. */
const MAX_ROWS = 1000;

export interface AuthFailureSummary {
  readonly since: Date;
  readonly counts: readonly { readonly peer: string; readonly reason: AuthFailureReason; readonly count: number }[];
  readonly overflow: number;
}

export interface AuthFailureOptions {
  /** 401s a peer may earn per interval before every request from it gets 429 until the interval ends */
  readonly limit: number;
  readonly intervalMs: number;
  readonly schedule: Schedule;
  readonly now: () => number;
  readonly report: (summary: AuthFailureSummary) => void;
}

export class AuthFailures {
  #rows = new Map<string, { peer: string; reason: AuthFailureReason; count: number }>();
  #unauthorisedByPeer = new Map<string, number>();
  #overflow = 0;
  #since = 0;
  #timer: Scheduled | undefined;

  constructor(private readonly options: AuthFailureOptions) {}

  /** Whether `peer` used up its failed attempts for this interval. */
  blocked(peer: string): boolean {
    return (this.#unauthorisedByPeer.get(peer) ?? 0) >= this.options.limit;
  }

  record(peer: string, reason: AuthFailureReason): void {
    if (this.#timer === undefined) {
      this.#since = this.options.now();
      this.#timer = this.options.schedule(() => this.flush(), this.options.intervalMs);
    }
    if (reason !== 'insufficient_role') this.#unauthorisedByPeer.set(peer, (this.#unauthorisedByPeer.get(peer) ?? 0) + 1);
    const key = `${peer} ${reason}`;
    const row = this.#rows.get(key);
    if (row !== undefined) row.count += 1;
    else if (this.#rows.size < MAX_ROWS) this.#rows.set(key, { peer, reason, count: 1 });
    else this.#overflow += 1;
  }

  /** Reports the interval's counts (if any) and starts a fresh interval: blocked peers may try again. */
  flush(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#rows.size === 0 && this.#overflow === 0) return;
    const summary: AuthFailureSummary = { since: new Date(this.#since), counts: [...this.#rows.values()].map((row) => ({ ...row })), overflow: this.#overflow };
    this.#rows = new Map();
    this.#unauthorisedByPeer = new Map();
    this.#overflow = 0;
    this.options.report(summary);
  }
}
