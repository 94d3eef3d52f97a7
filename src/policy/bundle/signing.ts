// Key generation and blob signing for teams without cosign: ECDSA P-256 over SHA-256 with a DER
// signature, exactly what `cosign verify-blob --key` and `openssl dgst -sha256 -verify` check.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { BundleRejection } from './rejection.js';
import { messageOf } from './public-key.js';

export interface PemKeyPair {
  /** PKCS#8 PEM, unencrypted: keep it offline and readable by the signer only */
  readonly privateKeyPem: string;
  /** SPKI PEM, the same `PUBLIC KEY` block cosign writes to cosign.pub */
  readonly publicKeyPem: string;
}

export function generateSigningKeyPair(): PemKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function loadSigningKey(pem: string, source: string): KeyObject {
  if (pem.includes('ENCRYPTED SIGSTORE PRIVATE KEY')) {
    throw new BundleRejection('unsupported', `${source}: cosign's encrypted key format is not read; sign with cosign sign-blob, or use a key from sluice bundle keygen`);
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: not a PEM private key (${messageOf(error)})`);
  }
}

/** Signs like cosign's signers: ECDSA with the curve's SHA-2 (DER), pure Ed25519, RSA PKCS#1 v1.5 SHA-256. */
export function signBlob(key: KeyObject, blob: Buffer): Buffer {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const hash = curve === 'secp384r1' ? 'sha384' : curve === 'secp521r1' ? 'sha512' : 'sha256';
      return sign(hash, blob, { key, dsaEncoding: 'der' });
    }
    case 'ed25519':
      return sign(null, blob, key);
    case 'rsa':
    case 'rsa-pss':
      return sign('sha256', blob, key);
    default:
      throw new BundleRejection('unsupported', `key type ${key.asymmetricKeyType ?? '?'} cannot sign allowlists`);
  }
}

export function publicKeyPemOf(key: KeyObject): string {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
}
