// Verifies a sigstore bundle (v0.1/0.2/0.3 media types) over an allowlist blob with
// @sigstore/verify, plus the checks an allowlist needs that the library leaves to its callers.
import { createHash, X509Certificate } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { PolicyError, toSignedEntity, toTrustMaterial, VerificationError, Verifier } from '@sigstore/verify';
import { HashAlgorithm, TrustedRoot } from '@sigstore/protobuf-specs';
import { describeMatcher, matches, type IdentityPolicy } from './identity-policy.js';
import { messageOf, type KeyAnchor } from './public-key.js';
import { BundleRejection, isBundleRejection, type BundleRefusal } from './rejection.js';
import type { TrustRoot } from './trusted-root.js';
import type { VerifiedSigner } from './verified.js';

export interface BundleTrust {
  readonly keys: readonly KeyAnchor[];
  readonly roots: readonly TrustRoot[];
  readonly identity: IdentityPolicy | undefined;
}

const EMPTY_ROOT = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
});

const DIGEST_ALGORITHMS: Readonly<Partial<Record<HashAlgorithm, string>>> = {
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
};

export function verifySigstoreBundle(json: unknown, artifact: Buffer, trust: BundleTrust, format: string, source: string): VerifiedSigner {
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: not a valid sigstore bundle (${messageOf(error)})`);
  }
  if (bundle.content.$case === 'dsseEnvelope') {
    // A DSSE envelope signs an in-toto statement about some artifact, not the allowlist bytes
    // themselves; accepting it would let any attestation by a trusted identity pass as a policy.
    throw new BundleRejection('unsupported', `${source}: DSSE bundles are not allowlist signatures; sign the file with cosign sign-blob`);
  }
  checkMessageDigest(bundle.content.messageSignature.messageDigest, artifact, source);
  const material = bundle.verificationMaterial.content;
  if (material.$case === 'publicKey') return verifyWithKeys(bundle, artifact, trust, format, source);
  const certificates = material.$case === 'certificate' ? [material.certificate] : material.x509CertificateChain.certificates;
  refuseRootCertificates(certificates.map((cert) => Buffer.from(cert.rawBytes)), source);
  return verifyKeyless(bundle, artifact, trust, format, source);
}

/** The library never compares messageDigest with the artifact when no tlog entry carries it. */
function checkMessageDigest(digest: { algorithm: HashAlgorithm; digest: Buffer } | undefined, artifact: Buffer, source: string): void {
  if (digest === undefined) return;
  const algorithm = DIGEST_ALGORITHMS[digest.algorithm];
  if (algorithm === undefined) throw new BundleRejection('unsupported', `${source}: message digest algorithm ${digest.algorithm} is not accepted`);
  if (!createHash(algorithm).update(artifact).digest().equals(Buffer.from(digest.digest))) {
    throw new BundleRejection('bad_signature', `${source}: the bundle's message digest is not the artifact's ${algorithm}`);
  }
}

/** A bundle must carry the leaf (and at most intermediates): a root inside it is not a trust anchor. */
function refuseRootCertificates(certificates: readonly Buffer[], source: string): void {
  for (const der of certificates) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(der);
    } catch (error) {
      throw new BundleRejection('malformed', `${source}: certificate does not parse (${messageOf(error)})`);
    }
    if (cert.checkIssued(cert) && cert.verify(cert.publicKey)) {
      throw new BundleRejection('malformed', `${source}: the certificate chain contains a self-signed root (${cert.subject.replaceAll('\n', ', ')})`);
    }
  }
}

function verifyWithKeys(bundle: Bundle, artifact: Buffer, trust: BundleTrust, format: string, source: string): VerifiedSigner {
  if (trust.keys.length === 0) {
    throw new BundleRejection('unknown_key', `${source}: the bundle is signed with a key; pass the trusted public key with --key`);
  }
  // With no root configured, a key-signed bundle still verifies as long as it carries no log entries.
  const root = trust.roots[0]?.root ?? EMPTY_ROOT;
  const failures: string[] = [];
  for (const anchor of trust.keys) {
    const material = toTrustMaterial(root, () => ({ publicKey: anchor.key, validFor: () => true }));
    // An offline-signed allowlist need not be in a transparency log; entries that are present are still checked.
    const verifier = new Verifier(material, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    try {
      verifier.verify(toSignedEntity(bundle, artifact));
      return { method: 'key', keyId: anchor.keyId, algorithm: anchor.algorithm, keySource: anchor.source, format };
    } catch (error) {
      failures.push(`${anchor.source}: ${messageOf(error)}`);
      if (!isSignatureFailure(error)) throw asRejection(error, source);
    }
  }
  const hint = bundle.verificationMaterial.content.$case === 'publicKey' ? bundle.verificationMaterial.content.publicKey.hint : '';
  const outcome: BundleRefusal = hint !== '' && !trust.keys.some((anchor) => anchor.hint === hint) ? 'unknown_key' : 'bad_signature';
  throw new BundleRejection(outcome, `${source}: no trusted key verifies the signature (${failures.join('; ')})`);
}

function verifyKeyless(bundle: Bundle, artifact: Buffer, trust: BundleTrust, format: string, source: string): VerifiedSigner {
  const policy = trust.identity;
  if (policy === undefined) {
    throw new BundleRejection(
      'untrusted_identity',
      `${source}: keyless bundle; pin the signer with --certificate-identity (or --certificate-identity-regexp) and --certificate-oidc-issuer`,
    );
  }
  let lastError: unknown = new BundleRejection('unknown_key', `${source}: no trusted root configured`);
  for (const root of trust.roots) {
    try {
      const signer = new Verifier(toTrustMaterial(root.root)).verify(toSignedEntity(bundle, artifact));
      const identity = signer.identity?.subjectAlternativeName;
      const issuer = signer.identity?.extensions?.issuer;
      if (!matches(policy.identity, identity) || !matches(policy.issuer, issuer)) {
        throw new BundleRejection(
          'untrusted_identity',
          `${source}: signed by ${identity ?? '(no SAN)'} via ${issuer ?? '(no issuer)'}, expected ${describeMatcher(policy.identity)} via ${describeMatcher(policy.issuer)}`,
        );
      }
      return { method: 'keyless', identity: identity ?? '', issuer: issuer ?? '', trustRoot: root.source, format };
    } catch (error) {
      if (isBundleRejection(error)) throw error;
      lastError = error;
    }
  }
  throw asRejection(lastError, source);
}

function isSignatureFailure(error: unknown): boolean {
  return error instanceof VerificationError && (error.code === 'SIGNATURE_ERROR' || error.code === 'PUBLIC_KEY_ERROR');
}

function asRejection(error: unknown, source: string): BundleRejection {
  if (isBundleRejection(error)) return error;
  if (error instanceof PolicyError) return new BundleRejection('untrusted_identity', `${source}: ${error.message}`, { cause: error });
  if (error instanceof VerificationError) {
    const outcome: BundleRefusal = error.code === 'CERTIFICATE_ERROR' || error.code === 'PUBLIC_KEY_ERROR' ? 'unknown_key' : 'bad_signature';
    return new BundleRejection(outcome, `${source}: ${error.code.toLowerCase().replaceAll('_', ' ')}: ${error.message}`, { cause: error });
  }
  return new BundleRejection('malformed', `${source}: ${messageOf(error)}`, { cause: error });
}
