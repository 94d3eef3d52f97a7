// The closed set of outcomes a bundle verification can have, and the typed error that carries a
// refusal. The outcome doubles as the `outcome` label of sluice_bundle_verifications_total.
import { SluiceError } from '../../errors.js';

export const BUNDLE_OUTCOMES = [
  'accepted',
  'bad_signature',
  'unknown_key',
  'untrusted_identity',
  'malformed',
  'unsupported',
  /** signed by a trusted key but named for another fleet than bundle.name */
  'wrong_name',
  /** issued_at more than the allowed clock skew ahead of this appliance */
  'issued_in_future',
  'downgrade',
  'replayed_version',
  'expired',
  'schema_error',
  'fetch_failure',
  /** STATE/bundle exists but cannot be read or parsed: the floor is unknown, so everything is denied */
  'state_unreadable',
] as const;

export type BundleOutcome = (typeof BUNDLE_OUTCOMES)[number];
export type BundleRefusal = Exclude<BundleOutcome, 'accepted'>;

export class BundleRejection extends SluiceError {
  readonly outcome: BundleRefusal;

  constructor(outcome: BundleRefusal, detail: string, options?: { cause?: unknown }) {
    super('BUNDLE_REJECTED', `${outcome.replaceAll('_', ' ')}: ${detail}`, options);
    this.outcome = outcome;
  }
}

export function isBundleRejection(value: unknown): value is BundleRejection {
  return value instanceof BundleRejection;
}
