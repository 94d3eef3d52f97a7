// A clock whose time moves only when the test says so, and whose timers fire only then: schedules
// are checked by their exact delays, whatever the load on the machine.
import type { RefreshClock } from '../../src/policy/blocklist/manager.js';

interface Pending {
  readonly at: number;
  readonly callback: () => void;
}

export class ManualClock implements RefreshClock {
  private time = Date.UTC(2026, 0, 1);
  private pending: Pending[] = [];
  private waiters: Array<{ readonly count: number; readonly resolve: () => void }> = [];

  now(): number {
    return this.time;
  }

  after(ms: number, callback: () => void): () => void {
    const timer = { at: this.time + ms, callback };
    this.pending.push(timer);
    const ready = this.waiters.filter((waiter) => this.pending.length >= waiter.count);
    this.waiters = this.waiters.filter((waiter) => this.pending.length < waiter.count);
    for (const waiter of ready) waiter.resolve();
    return () => {
      this.pending = this.pending.filter((other) => other !== timer);
    };
  }

  /** How long each waiting timer has left, shortest first. */
  delays(): number[] {
    return this.pending.map((timer) => timer.at - this.time).sort((a, b) => a - b);
  }

  /** Moves time on by `ms` and fires, in order, every timer that falls due. */
  advance(ms: number): void {
    this.time += ms;
    const due = this.pending.filter((timer) => timer.at <= this.time).sort((a, b) => a.at - b.at);
    this.pending = this.pending.filter((timer) => timer.at > this.time);
    for (const timer of due) timer.callback();
  }

  /** Resolves once `count` timers are waiting, e.g. when work a timer started has rescheduled. */
  timersWaiting(count: number): Promise<void> {
    if (this.pending.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }
}
