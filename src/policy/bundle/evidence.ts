// What proves an allowlist came from a trusted signer: a signature over the blob itself, or for
// OCI a cosign image signature over the manifest that names the blob's digest. Kept with the
// last-known-good so it can be re-verified at every start.
import { createHash } from 'node:crypto';
import { BundleRejection } from './rejection.js';
import { isRecord } from './trusted-root.js';
import { verifyArtifactSignature, type BundleTrust, type SignatureInput } from './verify-signature.js';
import type { VerifiedSigner } from './verified.js';

export type Evidence =
  | { readonly kind: 'blob'; readonly signature: SignatureInput }
  | {
      readonly kind: 'oci';
      /** the image manifest whose layer is the allowlist */
      readonly manifest: Buffer;
      /** each layer of the cosign `.sig` image: one per signer, any one may vouch */
      readonly signatures: readonly OciSignature[];
    };

export interface OciSignature {
  /** cosign's simple-signing payload naming the manifest digest */
  readonly payload: Buffer;
  /** a cosign bundle JSON ({base64Signature, cert?, rekorBundle?}) over the payload */
  readonly signature: SignatureInput;
}

export function verifyEvidence(artifact: Buffer, evidence: Evidence, trust: BundleTrust): VerifiedSigner {
  if (evidence.kind === 'blob') return verifyArtifactSignature(artifact, evidence.signature, trust);
  const manifestDigest = `sha256:${sha256Hex(evidence.manifest)}`;
  const signer = verifyAnySignature(evidence.signatures, manifestDigest, trust);
  const layer = `sha256:${sha256Hex(artifact)}`;
  if (!manifestLayerDigests(evidence.manifest).includes(layer)) {
    throw new BundleRejection('bad_signature', `the signed manifest ${manifestDigest} does not list the allowlist blob ${layer}`);
  }
  return signer;
}

function verifyAnySignature(signatures: readonly OciSignature[], manifestDigest: string, trust: BundleTrust): VerifiedSigner {
  let refusal: unknown = new BundleRejection('bad_signature', `no cosign signature for manifest ${manifestDigest}`);
  for (const { payload, signature } of signatures) {
    try {
      const signer = verifyArtifactSignature(payload, signature, trust);
      const signedDigest = signedManifestDigest(payload);
      if (signedDigest === manifestDigest) return signer;
      refusal = new BundleRejection('bad_signature', `the cosign signature is for manifest ${signedDigest}, not ${manifestDigest}`);
    } catch (error) {
      refusal = error;
    }
  }
  throw refusal;
}

/** cosign's payload: {"critical":{"image":{"docker-manifest-digest":"sha256:…"},"type":"cosign container image signature",…}} */
function signedManifestDigest(payload: Buffer): string {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new BundleRejection('malformed', 'the cosign signature payload is not JSON');
  }
  const critical = isRecord(json) ? json['critical'] : undefined;
  const image = isRecord(critical) ? critical['image'] : undefined;
  const digest = isRecord(image) ? image['docker-manifest-digest'] : undefined;
  if (!isRecord(critical) || critical['type'] !== 'cosign container image signature' || typeof digest !== 'string') {
    throw new BundleRejection('malformed', 'the cosign signature payload has no critical.image.docker-manifest-digest');
  }
  return digest;
}

export function manifestLayerDigests(manifest: Buffer): string[] {
  let json: unknown;
  try {
    json = JSON.parse(manifest.toString('utf8'));
  } catch {
    throw new BundleRejection('malformed', 'the OCI manifest is not JSON');
  }
  const layers = isRecord(json) ? json['layers'] : undefined;
  if (!Array.isArray(layers)) throw new BundleRejection('malformed', 'the OCI manifest has no layers');
  return layers.flatMap((layer: unknown) => (isRecord(layer) && typeof layer['digest'] === 'string' ? [layer['digest']] : []));
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** JSON form for the state directory; buffers as base64. */
function signatureToJson(signature: SignatureInput): Record<string, unknown> {
  return { kind: signature.kind, source: signature.source, bytes: signature.bytes.toString('base64') };
}

function signatureFromJson(raw: unknown): SignatureInput {
  if (!isRecord(raw)) throw new BundleRejection('malformed', 'stored signature is unreadable');
  const kind = raw['kind'];
  if ((kind !== 'detached' && kind !== 'bundle') || typeof raw['bytes'] !== 'string' || typeof raw['source'] !== 'string') {
    throw new BundleRejection('malformed', 'stored signature is unreadable');
  }
  return { kind, source: raw['source'], bytes: Buffer.from(raw['bytes'], 'base64') };
}

/** JSON form for the state directory; buffers as base64. */
export function evidenceToJson(evidence: Evidence): Record<string, unknown> {
  if (evidence.kind === 'blob') return { kind: 'blob', signature: signatureToJson(evidence.signature) };
  return {
    kind: 'oci',
    manifest: evidence.manifest.toString('base64'),
    signatures: evidence.signatures.map(({ payload, signature }) => ({ payload: payload.toString('base64'), signature: signatureToJson(signature) })),
  };
}

export function evidenceFromJson(json: unknown): Evidence {
  if (!isRecord(json)) throw new BundleRejection('malformed', 'stored evidence is unreadable');
  if (json['kind'] === 'blob') return { kind: 'blob', signature: signatureFromJson(json['signature']) };
  const signatures = json['signatures'];
  if (json['kind'] === 'oci' && typeof json['manifest'] === 'string' && Array.isArray(signatures)) {
    return {
      kind: 'oci',
      manifest: Buffer.from(json['manifest'], 'base64'),
      signatures: signatures.map((entry: unknown) => {
        if (!isRecord(entry) || typeof entry['payload'] !== 'string') throw new BundleRejection('malformed', 'stored OCI signature is unreadable');
        return { payload: Buffer.from(entry['payload'], 'base64'), signature: signatureFromJson(entry['signature']) };
      }),
    };
  }
  throw new BundleRejection('malformed', 'stored evidence has an unknown kind');
}
