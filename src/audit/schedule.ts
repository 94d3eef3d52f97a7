// A one-shot timer that can be swapped out, so tests drive the audit chain's write retries and
// the DNS summaries by hand instead of waiting on the wall clock.

export interface Scheduled {
  cancel(): void;
}

/** Calls `callback` once after `delayMs`, never synchronously. */
export type Schedule = (callback: () => void, delayMs: number) => Scheduled;

/** setTimeout, unref'd: a pending retry or summary must not keep a stopping process alive. */
export const realTimer: Schedule = (callback, delayMs) => {
  const timer = setTimeout(callback, delayMs);
  timer.unref();
  return { cancel: () => clearTimeout(timer) };
};
