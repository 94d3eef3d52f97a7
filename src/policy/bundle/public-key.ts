// Public-key trust anchors (cosign.pub PEM files) and verification of a raw signature over a blob
// the way cosign's key signers produce it: ECDSA over SHA-2, pure Ed25519, RSA PKCS#1 v1.5 or PSS.
import { constants, createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { BundleRejection } from './rejection.js';

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'ed25519' | 'rsa' | 'rsa-pss';

export interface KeyAnchor {
  /** lowercase hex SHA-256 of the DER SubjectPublicKeyInfo, as `sha256:…` */
  readonly keyId: string;
  /** base64 SHA-256 of the SPKI: the `hint` sigstore bundles carry for managed keys */
  readonly hint: string;
  readonly algorithm: KeyAlgorithm;
  readonly key: KeyObject;
  readonly source: string;
}

const CURVE_ALGORITHMS: Readonly<Record<string, { algorithm: KeyAlgorithm; hash: string }>> = {
  prime256v1: { algorithm: 'ecdsa-p256', hash: 'sha256' },
  secp384r1: { algorithm: 'ecdsa-p384', hash: 'sha384' },
  secp521r1: { algorithm: 'ecdsa-p521', hash: 'sha512' },
};

export function loadKeyAnchor(pem: string, source: string): KeyAnchor {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: not a PEM public key (${messageOf(error)})`);
  }
  const der = key.export({ type: 'spki', format: 'der' });
  const digest = createHash('sha256').update(der).digest();
  return {
    keyId: `sha256:${digest.toString('hex')}`,
    hint: digest.toString('base64'),
    algorithm: algorithmOf(key, source),
    key,
    source,
  };
}

function algorithmOf(key: KeyObject, source: string): KeyAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = CURVE_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve ?? ''];
      if (curve === undefined) {
        throw new BundleRejection('unsupported', `${source}: EC curve ${key.asymmetricKeyDetails?.namedCurve ?? '?'} is not one cosign signs with`);
      }
      return curve.algorithm;
    }
    case 'ed25519':
      return 'ed25519';
    case 'rsa':
      if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
        throw new BundleRejection('unsupported', `${source}: RSA keys under 2048 bits are refused`);
      }
      return 'rsa';
    case 'rsa-pss':
      return 'rsa-pss';
    default:
      throw new BundleRejection('unsupported', `${source}: key type ${key.asymmetricKeyType ?? '?'} is not supported`);
  }
}

/** True when `signature` is a valid signature by `anchor` over `data` in any scheme cosign uses for that key type. */
export function verifyRawSignature(anchor: KeyAnchor, data: Buffer, signature: Buffer): boolean {
  const { key } = anchor;
  try {
    switch (anchor.algorithm) {
      case 'ecdsa-p256':
        return verify('sha256', data, { key, dsaEncoding: 'der' }, signature);
      case 'ecdsa-p384':
        return verify('sha384', data, { key, dsaEncoding: 'der' }, signature);
      case 'ecdsa-p521':
        return verify('sha512', data, { key, dsaEncoding: 'der' }, signature);
      case 'ed25519':
        return verify(null, data, key, signature);
      case 'rsa':
        // A bare rsaEncryption key says nothing about the padding: cosign signs PKCS#1 v1.5 by
        // default and PSS when asked, and both are sound with the same key, so accept either.
        return (
          verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, signature) ||
          verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
        );
      case 'rsa-pss':
        return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    }
  } catch {
    // A signature of the wrong shape for the key (e.g. truncated DER) is simply not valid.
    return false;
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
