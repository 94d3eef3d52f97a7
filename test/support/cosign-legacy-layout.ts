// Restates a real sigstore v0.1/v0.3 message-signature bundle in cosign's older `--bundle` layout
// (LocalSignedPayload: base64Signature, cert as base64 PEM, rekorBundle), for legacy-format tests.

interface SigstoreBundleJson {
  readonly verificationMaterial: {
    readonly x509CertificateChain?: { readonly certificates: readonly { readonly rawBytes: string }[] };
    readonly tlogEntries: readonly {
      readonly logIndex: string;
      readonly integratedTime: string;
      readonly logId: { readonly keyId: string };
      readonly canonicalizedBody: string;
      readonly inclusionPromise: { readonly signedEntryTimestamp: string };
    }[];
  };
  readonly messageSignature: { readonly signature: string };
}

export function cosignLegacyLayout(json: unknown): Record<string, unknown> {
  const source = json as SigstoreBundleJson;
  const entry = source.verificationMaterial.tlogEntries[0];
  if (entry === undefined) throw new Error('the bundle has no transparency-log entry to restate');
  const der = source.verificationMaterial.x509CertificateChain?.certificates[0]?.rawBytes;
  const pem = der === undefined ? undefined : `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE-----\n`;
  return {
    base64Signature: source.messageSignature.signature,
    ...(pem === undefined ? {} : { cert: Buffer.from(pem).toString('base64') }),
    rekorBundle: {
      SignedEntryTimestamp: entry.inclusionPromise.signedEntryTimestamp,
      Payload: {
        body: entry.canonicalizedBody,
        integratedTime: Number(entry.integratedTime),
        logIndex: Number(entry.logIndex),
        logID: Buffer.from(entry.logId.keyId, 'base64').toString('hex'),
      },
    },
  };
}
