// Reads cosign's older `sign-blob --bundle` layout ({base64Signature, cert, rekorBundle}) and
// restates it as a sigstore v0.1 bundle, so one verifier checks the SET, body and certificate.
import { createHash, X509Certificate } from 'node:crypto';
import { BundleRejection } from './rejection.js';
import { isRecord } from './trusted-root.js';
import { messageOf } from './public-key.js';

export type LegacyBundle =
  | { readonly kind: 'signature-only'; readonly signature: string }
  | { readonly kind: 'sigstore'; readonly json: Record<string, unknown> };

export function isCosignLegacyBundle(json: unknown): json is Record<string, unknown> {
  return isRecord(json) && typeof json['base64Signature'] === 'string' && json['mediaType'] === undefined;
}

export function fromCosignLegacyBundle(json: Record<string, unknown>, artifact: Buffer, source: string): LegacyBundle {
  const signature = json['base64Signature'];
  if (typeof signature !== 'string') throw new BundleRejection('malformed', `${source}: base64Signature missing`);
  const cert = json['cert'];
  const rekor = json['rekorBundle'];
  if (rekor === undefined || rekor === null) {
    if (typeof cert === 'string' && cert !== '') {
      throw new BundleRejection('unsupported', `${source}: a certificate without a transparency-log entry cannot be verified offline`);
    }
    return { kind: 'signature-only', signature };
  }
  const payload = isRecord(rekor) ? rekor['Payload'] : undefined;
  const set = isRecord(rekor) ? rekor['SignedEntryTimestamp'] : undefined;
  if (!isRecord(payload) || typeof set !== 'string' || typeof payload['body'] !== 'string') {
    throw new BundleRejection('malformed', `${source}: rekorBundle needs SignedEntryTimestamp and Payload.body`);
  }
  const { body, integratedTime, logIndex, logID } = payload;
  if (typeof integratedTime !== 'number' || typeof logIndex !== 'number' || typeof logID !== 'string' || !/^[0-9a-f]{64}$/i.test(logID)) {
    throw new BundleRejection('malformed', `${source}: rekorBundle.Payload needs integratedTime, logIndex and a hex logID`);
  }
  const entry = {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
    kindVersion: kindVersionOf(body, source),
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: set },
    canonicalizedBody: body,
  };
  const verificationMaterial =
    typeof cert === 'string' && cert !== ''
      ? { x509CertificateChain: { certificates: [{ rawBytes: certificateDer(cert, source) }] }, tlogEntries: [entry] }
      : { publicKey: { hint: '' }, tlogEntries: [entry] };
  return {
    kind: 'sigstore',
    json: {
      mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      verificationMaterial,
      messageSignature: {
        messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(artifact).digest('base64') },
        signature,
      },
    },
  };
}

function kindVersionOf(body: string, source: string): { kind: string; version: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
    if (isRecord(decoded) && typeof decoded['kind'] === 'string' && typeof decoded['apiVersion'] === 'string') {
      return { kind: decoded['kind'], version: decoded['apiVersion'] };
    }
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: rekor entry body is not base64 JSON (${messageOf(error)})`);
  }
  throw new BundleRejection('malformed', `${source}: rekor entry body has no kind/apiVersion`);
}

/** cosign stores the certificate as base64 of its PEM; plain PEM is accepted too. */
function certificateDer(cert: string, source: string): string {
  const pem = cert.includes('-----BEGIN') ? cert : Buffer.from(cert, 'base64').toString('utf8');
  try {
    return new X509Certificate(pem).raw.toString('base64');
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: cert is not a PEM certificate (${messageOf(error)})`);
  }
}
