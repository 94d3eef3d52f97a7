// Runs a BundleManager against real files in a temp dir and records every callback, so tests
// can assert on the activations, fallbacks, shadows and outcomes the app would receive.
import type { BundleCallbacks, BundleOutcomeEvent } from '../../src/policy/bundle/manager.js';
import type { EffectivePolicy } from '../../src/policy/bundle/offline-policy.js';

export type Seen =
  | { readonly kind: 'activate'; readonly version: number; readonly rules: number }
  | { readonly kind: 'fallback'; readonly policy: EffectivePolicy }
  | { readonly kind: 'shadow'; readonly version: number | null };

export class Recorder implements BundleCallbacks {
  readonly seen: Seen[] = [];
  readonly outcomes: BundleOutcomeEvent[] = [];
  readonly errors: unknown[] = [];
  private waiters: { test: (seen: Seen) => boolean; resolve: () => void }[] = [];

  onActivate: BundleCallbacks['onActivate'] = (ruleSet, version) => this.push({ kind: 'activate', version, rules: ruleSet.size });
  onFallback: BundleCallbacks['onFallback'] = (policy) => this.push({ kind: 'fallback', policy });
  onShadow: BundleCallbacks['onShadow'] = (_ruleSet, version) => this.push({ kind: 'shadow', version });
  onOutcome: BundleCallbacks['onOutcome'] = (event) => {
    this.outcomes.push(event);
  };
  onError = (error: unknown): void => {
    this.errors.push(error);
  };

  get last(): Seen | undefined {
    return this.seen.at(-1);
  }

  outcomeNames(): string[] {
    return this.outcomes.map((event) => `${event.stage}:${event.outcome}`);
  }

  /** Resolves when a callback matching `test` arrives (or already has). */
  waitFor(test: (seen: Seen) => boolean, timeoutMs = 5000): Promise<void> {
    if (this.seen.some(test)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(this.seen)}`)), timeoutMs);
      this.waiters.push({ test, resolve: () => { clearTimeout(timer); resolve(); } });
    });
  }

  private push(seen: Seen): void {
    this.seen.push(seen);
    const ready = this.waiters.filter((waiter) => waiter.test(seen));
    this.waiters = this.waiters.filter((waiter) => !waiter.test(seen));
    for (const waiter of ready) waiter.resolve();
  }
}
