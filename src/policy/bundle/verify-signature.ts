// The one entry point that decides whether allowlist bytes are signed by a trusted anchor:
// a detached cosign signature, cosign's older bundle layout, or a sigstore bundle.
import { fromCosignLegacyBundle, isCosignLegacyBundle } from './cosign-legacy.js';
import { messageOf, verifyRawSignature, type KeyAnchor } from './public-key.js';
import { BundleRejection } from './rejection.js';
import { verifySigstoreBundle, type BundleTrust } from './sigstore-bundle.js';
import type { VerifiedSigner } from './verified.js';

export type { BundleTrust } from './sigstore-bundle.js';

export interface SignatureInput {
  /** `detached`: cosign --output-signature (base64); `bundle`: cosign --bundle or a sigstore bundle */
  readonly kind: 'detached' | 'bundle';
  readonly bytes: Buffer;
  readonly source: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function verifyArtifactSignature(artifact: Buffer, signature: SignatureInput, trust: BundleTrust): VerifiedSigner {
  if (signature.kind === 'detached') {
    return verifyDetached(artifact, decodeBase64(signature.bytes.toString('utf8'), signature.source), trust.keys, 'detached signature', signature.source);
  }
  let json: unknown;
  try {
    json = JSON.parse(signature.bytes.toString('utf8'));
  } catch (error) {
    throw new BundleRejection('malformed', `${signature.source}: bundle is not JSON (${messageOf(error)})`);
  }
  if (!isCosignLegacyBundle(json)) return verifySigstoreBundle(json, artifact, trust, 'sigstore bundle', signature.source);
  const legacy = fromCosignLegacyBundle(json, artifact, signature.source);
  if (legacy.kind === 'signature-only') {
    return verifyDetached(artifact, decodeBase64(legacy.signature, signature.source), trust.keys, 'cosign bundle', signature.source);
  }
  return verifySigstoreBundle(legacy.json, artifact, trust, 'cosign bundle', signature.source);
}

function verifyDetached(artifact: Buffer, signature: Buffer, keys: readonly KeyAnchor[], format: string, source: string): VerifiedSigner {
  if (keys.length === 0) throw new BundleRejection('unknown_key', `${source}: a bare signature needs the trusted public key (--key)`);
  for (const anchor of keys) {
    if (verifyRawSignature(anchor, artifact, signature)) {
      return { method: 'key', keyId: anchor.keyId, algorithm: anchor.algorithm, keySource: anchor.source, format };
    }
  }
  const tried = keys.map((anchor) => anchor.keyId).join(', ');
  throw new BundleRejection('bad_signature', `${source}: the signature does not verify the artifact with any trusted key (${tried})`);
}

/** cosign writes standard base64, possibly wrapped; anything else is refused rather than guessed at. */
function decodeBase64(text: string, source: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new BundleRejection('malformed', `${source}: the signature is not standard base64`);
  }
  return Buffer.from(compact, 'base64');
}
