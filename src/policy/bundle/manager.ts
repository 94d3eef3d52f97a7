// Keeps the allowlist bundle current: re-verifies the last-known-good at start, fetches from the
// source (watched and polled), judges each candidate and persists what it accepts; its publisher
// tells the app which policy that leaves in force: a bundle, deny-all, or the local rules/.
import type { Metrics } from '../../obs/metrics.js';
import { assessCandidate, type AcceptedBundle, type AssessmentContext, type BundlePins, type Candidate, type VersionFloor } from './accept.js';
import { effectivePolicy, type EffectivePolicy, type OfflineSettings, type PolicyInputs } from './offline-policy.js';
import { PolicyPublisher, type PolicyCallbacks } from './publisher.js';
import { isBundleRejection, type BundleOutcome } from './rejection.js';
import { messageOf } from './public-key.js';
import type { BundleSource, FetchResult } from './source.js';
import { BundleStateError, BundleStateStore, type Slot, type StoredState } from './state-store.js';
import type { BundleTrust } from './verify-signature.js';
import { describeSigner } from './verified.js';

export interface BundleOutcomeEvent {
  readonly outcome: BundleOutcome;
  readonly at: Date;
  /** `source` for fetched candidates, `last-known-good` for the copy re-verified at start */
  readonly stage: 'source' | 'last-known-good';
  readonly origin: string;
  readonly version: number | undefined;
  readonly signer: string | undefined;
  readonly detail: string;
}

/** What the manager tells the app: the policy changes (see PolicyCallbacks) and every outcome. */
export interface BundleCallbacks extends PolicyCallbacks {
  /** every verification outcome, for the audit chain */
  onOutcome(event: BundleOutcomeEvent): void;
  /** the state directory could not be written; the policy in force is unchanged */
  onError?(error: unknown): void;
}

export interface BundleManagerOptions {
  readonly source: BundleSource;
  readonly trust: BundleTrust;
  /** a directory owned by Sluice, e.g. STATE_DIR/bundle */
  readonly stateDir: string;
  readonly offline: OfflineSettings;
  /** bundle.name and bundle.min_version from the config */
  readonly pins?: BundlePins;
  readonly pollIntervalMs: number;
  /** per fetch */
  readonly fetchTimeoutMs: number;
  readonly callbacks: BundleCallbacks;
  readonly metrics?: Metrics;
  readonly now?: () => Date;
}

export class BundleManager {
  private readonly store: BundleStateStore;
  private readonly now: () => Date;
  private floor: VersionFloor | undefined;
  private lastSuccessAt: Date | undefined;
  private sourceHealthy = false;
  private active: AcceptedBundle | undefined;
  private shadow: AcceptedBundle | undefined;
  /** set while a file in the state directory cannot be read: everything is denied meanwhile */
  private stateError: string | undefined;
  private readonly publisher: PolicyPublisher;
  private inFlight: Promise<void> | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly options: BundleManagerOptions) {
    this.store = new BundleStateStore(options.stateDir);
    this.now = options.now ?? (() => new Date());
    const { offline, callbacks, metrics } = options;
    this.publisher = new PolicyPublisher({
      offline,
      callbacks,
      ...(metrics === undefined ? {} : { metrics }),
      holdings: () => ({ inputs: this.inputs(), active: this.active, shadow: this.shadow }),
    });
  }

  /** The policy in force right now. */
  get policy(): EffectivePolicy {
    return effectivePolicy(this.options.offline, this.inputs());
  }

  /** Loads and re-verifies the last-known-good, fetches once, then keeps watching and polling. */
  async start(): Promise<void> {
    await this.load();
    await this.refresh();
    this.unwatch = this.options.source.watch?.(() => void this.refresh());
    this.schedulePoll();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.pollTimer);
    this.publisher.stop();
    this.unwatch?.();
    this.options.source.close?.().catch(() => undefined);
  }

  /** One fetch-and-judge cycle; concurrent calls share the cycle in progress. Never rejects. */
  refresh(): Promise<void> {
    this.inFlight ??= this.cycle()
      .catch((error: unknown) => {
        // Only the state directory can fail here (disk full, permissions): nothing new was taken
        // into use, so the policy in force stays; the app hears of it through onError.
        this.sourceHealthy = false;
        this.options.callbacks.onError?.(error);
      })
      .finally(() => {
        this.inFlight = undefined;
        return this.publisher.publish();
      });
    return this.inFlight;
  }

  /**
   * Reads the floor and the last-known-good. An unreadable state is recorded once and leaves
   * everything denied; each cycle tries again, so repairing the file needs no restart.
   */
  private async load(): Promise<boolean> {
    let stored: StoredState;
    try {
      stored = await this.store.readAll();
    } catch (error) {
      if (!(error instanceof BundleStateError)) throw error;
      if (this.stateError !== error.message) {
        this.stateError = error.message;
        this.record({ outcome: 'state_unreadable', stage: 'last-known-good', origin: this.store.dir, version: undefined, signer: undefined, detail: error.message });
      }
      return false;
    }
    this.stateError = undefined;
    this.floor = stored.floor;
    this.lastSuccessAt = stored.lastSuccessAt;
    this.active = this.restore(stored.active);
    this.shadow = this.restore(stored.shadow);
    if (this.active !== undefined && (this.floor === undefined || this.active.document.version > this.floor.version)) {
      this.floor = { version: this.active.document.version, sha256: this.active.sha256 };
    }
    return true;
  }

  private async cycle(): Promise<void> {
    // Without the floor a replayed old bundle would pass: fetch nothing until the state reads.
    if (this.stateError !== undefined && !(await this.load())) return;
    const origin = this.options.source.description;
    let result: FetchResult;
    try {
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.fetchTimeoutMs)]);
      result = await this.options.source.fetch(signal);
    } catch (error) {
      this.sourceHealthy = false;
      this.options.source.invalidate?.();
      this.record({ outcome: 'fetch_failure', stage: 'source', origin, version: undefined, signer: undefined, detail: messageOf(error) });
      return;
    }
    if (result.kind === 'fetched') {
      await this.judge(result.candidate);
    } else if (this.active !== undefined || this.shadow !== undefined) {
      // The source vouches that what we hold is still current (expiry is checked separately).
      await this.markSuccess();
      this.sourceHealthy = true;
    } else {
      this.sourceHealthy = false;
      this.options.source.invalidate?.();
    }
  }

  private async judge(candidate: Candidate): Promise<void> {
    let assessment: ReturnType<typeof assessCandidate>;
    try {
      assessment = assessCandidate(candidate, this.assessment(this.floor));
    } catch (error) {
      if (!isBundleRejection(error)) throw error;
      this.sourceHealthy = false;
      this.options.source.invalidate?.();
      this.record({ outcome: error.outcome, stage: 'source', origin: candidate.origin, version: undefined, signer: undefined, detail: error.message });
      return;
    }
    const { kind, bundle } = assessment;
    if (kind === 'new') {
      const slot: Slot = bundle.document.enforce === 'enforce' ? 'active' : 'shadow';
      // Bundle first, floor second (in markSuccess): a crash between the two leaves a last-known-good
      // whose version lifts the floor again at start, so no order of failures allows a downgrade.
      await this.store.writeSlot(slot, bundle);
      if (slot === 'active' && this.shadow !== undefined) await this.store.writeSlot('shadow', undefined);
      this.floor = { version: bundle.document.version, sha256: bundle.sha256 };
      if (slot === 'active') {
        this.active = bundle;
        this.shadow = undefined;
      } else {
        this.shadow = bundle;
      }
      this.record(this.acceptedEvent(bundle, 'source'));
    }
    await this.markSuccess();
    this.sourceHealthy = true;
  }

  private assessment(floor: VersionFloor | undefined): AssessmentContext {
    return { trust: this.options.trust, floor, pins: this.options.pins ?? {}, now: this.now() };
  }

  private restore(candidate: Candidate | undefined): AcceptedBundle | undefined {
    if (candidate === undefined) return undefined;
    try {
      // The floor is not applied to our own copy: it is the bundle that set the floor.
      const { bundle } = assessCandidate(candidate, this.assessment(undefined));
      if (this.floor !== undefined && bundle.document.version === this.floor.version && bundle.sha256 !== this.floor.sha256) {
        this.record({ outcome: 'replayed_version', stage: 'last-known-good', origin: candidate.origin, version: bundle.document.version, signer: undefined, detail: 'stored bundle differs from the recorded digest' });
        return undefined;
      }
      if (this.floor !== undefined && bundle.document.version > this.floor.version) this.floor = { version: bundle.document.version, sha256: bundle.sha256 };
      this.record(this.acceptedEvent(bundle, 'last-known-good'));
      return bundle;
    } catch (error) {
      if (!isBundleRejection(error)) throw error;
      this.record({ outcome: error.outcome, stage: 'last-known-good', origin: candidate.origin, version: undefined, signer: undefined, detail: error.message });
      return undefined;
    }
  }

  private async markSuccess(): Promise<void> {
    this.lastSuccessAt = this.now();
    await this.store.writeState({ floor: this.floor, lastSuccessAt: this.lastSuccessAt });
    this.options.metrics?.bundleLastSuccess.set(this.lastSuccessAt.getTime() / 1000);
  }

  private inputs(): PolicyInputs {
    const active = this.active === undefined ? undefined : { version: this.active.document.version, expiresAt: this.active.document.expiresAt };
    return { active, sourceHealthy: this.sourceHealthy, lastSuccessAt: this.lastSuccessAt, now: this.now(), stateError: this.stateError };
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      void this.refresh().finally(() => this.schedulePoll());
    }, this.options.pollIntervalMs).unref();
  }

  private acceptedEvent(bundle: AcceptedBundle, stage: BundleOutcomeEvent['stage']): Omit<BundleOutcomeEvent, 'at'> {
    const { document } = bundle;
    return {
      outcome: 'accepted',
      stage,
      origin: bundle.candidate.origin,
      version: document.version,
      signer: describeSigner(bundle.signer),
      detail: `${document.name} version ${document.version}, ${document.ruleSet.size} rules, ${document.enforce} mode`,
    };
  }

  private record(event: Omit<BundleOutcomeEvent, 'at'>): void {
    this.options.metrics?.bundleVerifications.inc({ outcome: event.outcome });
    this.options.callbacks.onOutcome({ ...event, at: this.now() });
  }
}
