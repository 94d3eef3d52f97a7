// Time as the running process reads it: now, and one-shot timers that do not hold the process
// open. Tests substitute a manual clock so expiry is exact to the millisecond.

export interface Clock {
  now(): number;
  /** runs `callback` once, `ms` from now; returns its cancel */
  after(ms: number, callback: () => void): () => void;
}

// setTimeout cannot wait longer than 2^31-1 ms; a longer wait is taken in steps.
const MAX_TIMER_MS = 2_147_483_647;

export const SYSTEM_CLOCK: Clock = {
  now: () => Date.now(),
  after: (ms, callback) => {
    let timer: NodeJS.Timeout;
    const due = Date.now() + ms;
    const arm = (): void => {
      const left = due - Date.now();
      timer = setTimeout(left > MAX_TIMER_MS ? arm : callback, Math.max(0, Math.min(left, MAX_TIMER_MS))).unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};
