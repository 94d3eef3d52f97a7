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
  'downgrade',
  'replayed_version',
  'expired',
  'schema_error',
  'fetch_failure',
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
