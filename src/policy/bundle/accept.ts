// The order in which a fetched allowlist is judged before it may take effect: signature, schema,
// the pinned name, issued_at, a version above the pinned minimum and the highest ever accepted,
// then expires_at.
import { SourceError } from '../../config/yaml.js';
import { parseBundleText, type BundleDocument } from './document.js';
import { sha256Hex, verifyEvidence, type Evidence } from './evidence.js';
import { BundleRejection } from './rejection.js';
import type { BundleTrust } from './verify-signature.js';
import type { VerifiedSigner } from './verified.js';

export interface Candidate {
  readonly artifact: Buffer;
  readonly evidence: Evidence;
  /** where it came from, for messages: a path, URL or OCI reference */
  readonly origin: string;
}

/** The highest version ever accepted and the digest of its bytes, persisted across restarts. */
export interface VersionFloor {
  readonly version: number;
  readonly sha256: string;
}

export interface AcceptedBundle {
  readonly candidate: Candidate;
  readonly document: BundleDocument;
  readonly signer: VerifiedSigner;
  readonly sha256: string;
}

/** What sluice.yaml pins about every bundle, beyond who signed it. */
export interface BundlePins {
  /** the document's `name` must equal this, so a key that signs for several fleets cannot cross them */
  readonly name?: string | undefined;
  /** no version below this is accepted, even when the state volume (and its floor) was lost */
  readonly minVersion?: number | undefined;
}

/**
 * How far issued_at may lie ahead of this clock. NTP keeps appliances within seconds; five minutes
 * absorbs a drifting one, while a bundle signed for later release stays refused until its time.
 */
export const ISSUED_AT_SKEW_MS = 5 * 60_000;

export type Assessment = { readonly kind: 'new' | 'unchanged'; readonly bundle: AcceptedBundle };

export interface AssessmentContext {
  readonly trust: BundleTrust;
  readonly floor: VersionFloor | undefined;
  readonly pins: BundlePins;
  readonly now: Date;
}

function checkPins(document: BundleDocument, origin: string, pins: BundlePins, now: Date): void {
  if (pins.name !== undefined && document.name !== pins.name) {
    throw new BundleRejection('wrong_name', `${origin}: the bundle is named ${JSON.stringify(document.name)}, this appliance takes ${JSON.stringify(pins.name)} (bundle.name)`);
  }
  if (document.issuedAt.getTime() > now.getTime() + ISSUED_AT_SKEW_MS) {
    throw new BundleRejection('issued_in_future', `${origin}: version ${document.version} is issued at ${document.issuedAt.toISOString()}, more than ${ISSUED_AT_SKEW_MS / 60_000} minutes after this clock (${now.toISOString()})`);
  }
  if (pins.minVersion !== undefined && document.version < pins.minVersion) {
    throw new BundleRejection('downgrade', `${origin}: version ${document.version} is below bundle.min_version ${pins.minVersion}`);
  }
}

export function assessCandidate(candidate: Candidate, context: AssessmentContext): Assessment {
  const { floor, now } = context;
  const signer = verifyEvidence(candidate.artifact, candidate.evidence, context.trust);
  let document: BundleDocument;
  try {
    document = parseBundleText(candidate.origin, candidate.artifact.toString('utf8'));
  } catch (error) {
    if (error instanceof SourceError) throw new BundleRejection('schema_error', error.message, { cause: error });
    throw error;
  }
  checkPins(document, candidate.origin, context.pins, now);
  const sha256 = sha256Hex(candidate.artifact);
  const bundle: AcceptedBundle = { candidate, document, signer, sha256 };
  let kind: Assessment['kind'] = 'new';
  if (floor !== undefined) {
    if (document.version < floor.version) {
      throw new BundleRejection('downgrade', `${candidate.origin}: version ${document.version} is below version ${floor.version}, the highest already accepted`);
    }
    if (document.version === floor.version) {
      // Re-signing different content under a used version number would let two appliances enforce
      // different policies while reporting the same version.
      if (sha256 !== floor.sha256) {
        throw new BundleRejection('replayed_version', `${candidate.origin}: version ${document.version} was already accepted with different content`);
      }
      kind = 'unchanged';
    }
  }
  if (document.expiresAt !== undefined && now >= document.expiresAt) {
    throw new BundleRejection('expired', `${candidate.origin}: version ${document.version} expired at ${document.expiresAt.toISOString()}`);
  }
  return { kind, bundle };
}
