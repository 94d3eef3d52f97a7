// The order in which a fetched allowlist is judged before it may take effect: signature, then
// schema, then a version strictly above the highest ever accepted, then expires_at.
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

export type Assessment = { readonly kind: 'new' | 'unchanged'; readonly bundle: AcceptedBundle };

export function assessCandidate(candidate: Candidate, trust: BundleTrust, floor: VersionFloor | undefined, now: Date): Assessment {
  const signer = verifyEvidence(candidate.artifact, candidate.evidence, trust);
  let document: BundleDocument;
  try {
    document = parseBundleText(candidate.origin, candidate.artifact.toString('utf8'));
  } catch (error) {
    if (error instanceof SourceError) throw new BundleRejection('schema_error', error.message, { cause: error });
    throw error;
  }
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
