// What governs traffic when the bundle source cannot vouch for a current bundle: the offline mode
// decides between the last-known-good, denying everything and the local rules/.
export type OfflineMode = 'fail_closed' | 'cached_with_expiry' | 'cached_indefinite' | 'default_policy';

export interface OfflineSettings {
  readonly mode: OfflineMode;
  /** cached_with_expiry: how long after the last successful fetch the last-known-good still applies */
  readonly maxAgeMs: number;
}

export type EffectivePolicy =
  | { readonly kind: 'bundle'; readonly version: number; readonly stale: boolean }
  | { readonly kind: 'deny_all'; readonly reason: string }
  | { readonly kind: 'default_policy'; readonly reason: string };

export interface PolicyInputs {
  readonly active: { readonly version: number; readonly expiresAt: Date | undefined } | undefined;
  /** the last fetch delivered or confirmed a verified bundle */
  readonly sourceHealthy: boolean;
  readonly lastSuccessAt: Date | undefined;
  readonly now: Date;
  /** why STATE/bundle could not be read; undefined when it was */
  readonly stateError: string | undefined;
}

export function effectivePolicy(settings: OfflineSettings, inputs: PolicyInputs): EffectivePolicy {
  const fallback = (reason: string): EffectivePolicy =>
    settings.mode === 'default_policy' ? { kind: 'default_policy', reason } : { kind: 'deny_all', reason };
  const { active, now } = inputs;
  // Not even default_policy applies: a state that cannot be read may hide the downgrade floor, and
  // an operator must look at it, so nothing passes until it reads again.
  if (inputs.stateError !== undefined) return { kind: 'deny_all', reason: inputs.stateError };
  if (active === undefined) return fallback('no verified bundle is available');
  // expires_at is the publisher's promise that the rules are no longer safe: no mode outlives it.
  if (active.expiresAt !== undefined && now >= active.expiresAt) {
    return fallback(`bundle version ${active.version} expired at ${active.expiresAt.toISOString()}`);
  }
  if (inputs.sourceHealthy) return { kind: 'bundle', version: active.version, stale: false };
  switch (settings.mode) {
    case 'fail_closed':
      return { kind: 'deny_all', reason: 'the bundle source is unreachable or served no valid bundle (fail_closed)' };
    case 'cached_indefinite':
      return { kind: 'bundle', version: active.version, stale: true };
    case 'default_policy':
      return { kind: 'default_policy', reason: 'the bundle source is unreachable or served no valid bundle (default_policy)' };
    case 'cached_with_expiry': {
      const last = inputs.lastSuccessAt;
      if (last !== undefined && now.getTime() - last.getTime() <= settings.maxAgeMs) return { kind: 'bundle', version: active.version, stale: true };
      const since = last === undefined ? 'never' : last.toISOString();
      return { kind: 'deny_all', reason: `no successful bundle fetch since ${since}, beyond max_age (cached_with_expiry)` };
    }
  }
}

/** The next instant at which the effective policy can change without a fetch, if any. */
export function nextDeadline(settings: OfflineSettings, inputs: PolicyInputs): Date | undefined {
  const candidates: number[] = [];
  if (inputs.active?.expiresAt !== undefined) candidates.push(inputs.active.expiresAt.getTime());
  if (!inputs.sourceHealthy && settings.mode === 'cached_with_expiry' && inputs.lastSuccessAt !== undefined) {
    candidates.push(inputs.lastSuccessAt.getTime() + settings.maxAgeMs + 1);
  }
  const future = candidates.filter((at) => at > inputs.now.getTime());
  return future.length === 0 ? undefined : new Date(Math.min(...future));
}
