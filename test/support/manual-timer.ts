// A Schedule that never fires on its own: the test decides when a retry or summary is due, so no
// assertion depends on the wall clock.
import type { Schedule } from '../../src/audit/schedule.js';

interface Pending {
  readonly callback: () => void;
  readonly delayMs: number;
  cancelled: boolean;
}

export class ManualTimer {
  #pending: Pending[] = [];
  /** every delay ever asked for, in order (backoff checks) */
  readonly delays: number[] = [];

  readonly schedule: Schedule = (callback, delayMs) => {
    const entry: Pending = { callback, delayMs, cancelled: false };
    this.#pending.push(entry);
    this.delays.push(delayMs);
    return { cancel: () => void (entry.cancelled = true) };
  };

  /** Timers scheduled and neither fired nor cancelled. */
  get waiting(): number {
    return this.#pending.filter((entry) => !entry.cancelled).length;
  }

  /** Fires every timer waiting now (not ones they schedule in turn); returns how many fired. */
  fire(): number {
    const due = this.#pending.filter((entry) => !entry.cancelled);
    this.#pending = [];
    for (const entry of due) entry.callback();
    return due.length;
  }
}
