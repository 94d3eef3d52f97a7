// Tells the app which policy governs traffic (a bundle, deny-all or the local rules) and which
// report-mode bundle shadows it: once per change, in order, again when a deadline passes.
import type { Metrics } from '../../obs/metrics.js';
import type { RuleSet } from '../rule-set.js';
import type { AcceptedBundle } from './accept.js';
import type { BundleDocument } from './document.js';
import { effectivePolicy, nextDeadline, type EffectivePolicy, type OfflineSettings, type PolicyInputs } from './offline-policy.js';

/**
 * The three changes below are offered one at a time and awaited (the app records each durably
 * before it takes effect). A rejection means the app could not take the change up and has failed
 * closed; the change is offered again at the next publish.
 */
export interface PolicyCallbacks {
  /** an enforcing bundle now decides; swap the rule set atomically and tag decisions with `version` */
  onActivate(ruleSet: RuleSet, version: number, document: BundleDocument): void | Promise<void>;
  /** no bundle may decide: deny everything, or hand back to the local rules/ */
  onFallback(policy: Extract<EffectivePolicy, { kind: 'deny_all' | 'default_policy' }>): void | Promise<void>;
  /** a `report` bundle to evaluate beside the active policy (null: stop shadowing) */
  onShadow(ruleSet: RuleSet | null, version: number | null): void | Promise<void>;
}

/** What the manager holds right now: the inputs of the offline rules and the bundles it accepted. */
export interface BundleHoldings {
  readonly inputs: PolicyInputs;
  readonly active: AcceptedBundle | undefined;
  readonly shadow: AcceptedBundle | undefined;
}

export interface PublisherOptions {
  readonly offline: OfflineSettings;
  readonly callbacks: PolicyCallbacks;
  readonly metrics?: Pick<Metrics, 'bundleVersion'>;
  readonly holdings: () => BundleHoldings;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export class PolicyPublisher {
  private emitted: string | undefined;
  private emittedShadow: number | null = null;
  private publishing: Promise<void> = Promise.resolve();
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: PublisherOptions) {}

  /** Offers the app any change since the last call; calls queue, so changes arrive in order. */
  publish(): Promise<void> {
    this.publishing = this.publishing.then(() => this.publishNow());
    return this.publishing;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.deadlineTimer);
  }

  private async publishNow(): Promise<void> {
    if (this.stopped) return;
    const { inputs, active, shadow: held } = this.options.holdings();
    const { callbacks } = this.options;
    const policy = effectivePolicy(this.options.offline, inputs);
    const shadow = held !== undefined && policy.kind === 'bundle' && held.document.version > policy.version ? held : undefined;
    const key = JSON.stringify([policy.kind, policy.kind === 'bundle' ? policy.version : policy.reason]);
    if (key !== this.emitted) {
      const previous = this.emitted;
      this.emitted = key;
      try {
        if (policy.kind === 'bundle' && active !== undefined) {
          await callbacks.onActivate(active.document.ruleSet, policy.version, active.document);
        } else if (policy.kind !== 'bundle') {
          await callbacks.onFallback(policy);
        }
      } catch {
        // The app could not take the change up and failed closed: offer it again next time.
        this.emitted = previous;
      }
    }
    const shadowVersion = shadow?.document.version ?? null;
    if (shadowVersion !== this.emittedShadow) {
      const previous = this.emittedShadow;
      this.emittedShadow = shadowVersion;
      try {
        await callbacks.onShadow(shadow?.document.ruleSet ?? null, shadowVersion);
      } catch {
        this.emittedShadow = previous;
      }
    }
    this.options.metrics?.bundleVersion.set(policy.kind === 'bundle' ? policy.version : 0);
    this.scheduleDeadline(inputs);
  }

  /** Expiry and max_age change the policy with no fetch at all: publish again when the next one passes. */
  private scheduleDeadline(inputs: PolicyInputs): void {
    clearTimeout(this.deadlineTimer);
    const deadline = nextDeadline(this.options.offline, inputs);
    if (deadline === undefined) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, deadline.getTime() - inputs.now.getTime()));
    this.deadlineTimer = setTimeout(() => void this.publish(), delay).unref();
  }
}
