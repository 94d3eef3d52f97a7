// What a successful signature check proves: which anchor vouched for the allowlist bytes, and a
// one-line description of it for the CLI and audit records.
import type { KeyAlgorithm } from './public-key.js';

export type VerifiedSigner =
  | {
      readonly method: 'key';
      readonly keyId: string;
      readonly algorithm: KeyAlgorithm;
      readonly keySource: string;
      readonly format: string;
    }
  | {
      readonly method: 'keyless';
      readonly identity: string;
      readonly issuer: string;
      readonly trustRoot: string;
      readonly format: string;
    };

export function describeSigner(signer: VerifiedSigner): string {
  return signer.method === 'key'
    ? `key ${signer.keyId} (${signer.algorithm}, ${signer.keySource}) via ${signer.format}`
    : `certificate identity ${signer.identity} issued by ${signer.issuer} (${signer.trustRoot}) via ${signer.format}`;
}
