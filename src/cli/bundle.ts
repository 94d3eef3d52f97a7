// `sluice bundle verify|keygen|sign`: check an allowlist signature exactly as the proxy will (with
// cosign verify-blob's flag names), and make keys and signatures for teams without cosign.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { compileIdentityPolicy } from '../policy/bundle/identity-policy.js';
import { loadKeyAnchor } from '../policy/bundle/public-key.js';
import { isBundleRejection } from '../policy/bundle/rejection.js';
import { generateSigningKeyPair, loadSigningKey, publicKeyPemOf, signBlob } from '../policy/bundle/signing.js';
import { parseTrustedRoot, publicGoodTrustRoot } from '../policy/bundle/trusted-root.js';
import { verifyArtifactSignature, type BundleTrust } from '../policy/bundle/verify-signature.js';
import { describeSigner } from '../policy/bundle/verified.js';
import { describeBundleArtifact } from '../policy/bundle/describe-artifact.js';

const USAGE = `Usage:
  sluice bundle verify ARTIFACT (--signature FILE | --bundle FILE) [--key PEM]...
        [--trusted-root JSON]... [--certificate-identity ID | --certificate-identity-regexp RE]
        [--certificate-oidc-issuer ISS | --certificate-oidc-issuer-regexp RE]
  sluice bundle keygen [NAME]          writes NAME.key and NAME.pub (default: cosign)
  sluice bundle sign FILE --key NAME.key   prints the base64 signature

verify exits 0 only when the artifact's signature verifies against a trusted anchor:
  --key PEM            a trusted public key (repeat it while rotating keys; one that verifies is enough)
  --signature FILE     a detached base64 signature (cosign sign-blob --output-signature)
  --bundle FILE        a sigstore bundle or cosign's older --bundle file
  --trusted-root JSON  sigstore trusted root for keyless bundles (default: embedded public-good)
  --certificate-identity[-regexp], --certificate-oidc-issuer[-regexp]
                       the keyless signer to accept (RE2 patterns are unanchored, like cosign's)`;

export const bundleCommand: Command = {
  usage: USAGE,
  async run(argv, io) {
    const [action, ...rest] = argv;
    try {
      switch (action) {
        case 'verify':
          return await verify(rest, io);
        case 'keygen':
          return await keygen(rest, io);
        case 'sign':
          return await signFile(rest, io);
        default:
          return usageFailure(io, 'sluice bundle', `unknown action ${JSON.stringify(action ?? '')}`, USAGE);
      }
    } catch (error) {
      const who = `sluice bundle ${action ?? ''}`;
      if (isUsageError(error)) return usageFailure(io, who, error, USAGE);
      if (!isBundleRejection(error)) return failure(io, who, error);
      io.err(`${who}: refused: ${error.message}`);
      return EXIT.failed;
    }
  },
};

async function verify(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      signature: { type: 'string' },
      bundle: { type: 'string' },
      key: { type: 'string', multiple: true },
      'trusted-root': { type: 'string', multiple: true },
      'certificate-identity': { type: 'string' },
      'certificate-identity-regexp': { type: 'string' },
      'certificate-oidc-issuer': { type: 'string' },
      'certificate-oidc-issuer-regexp': { type: 'string' },
    },
  });
  const [artifactPath, ...extra] = positionals;
  if (artifactPath === undefined || extra.length > 0) throw usage('give exactly one ARTIFACT');
  if ((values.signature === undefined) === (values.bundle === undefined)) throw usage('give exactly one of --signature and --bundle');
  const identity = compileIdentityPolicy({
    identity: values['certificate-identity'],
    identityRegexp: values['certificate-identity-regexp'],
    issuer: values['certificate-oidc-issuer'],
    issuerRegexp: values['certificate-oidc-issuer-regexp'],
  });
  const keys = await Promise.all((values.key ?? []).map(async (path) => loadKeyAnchor(await readFile(path, 'utf8'), path)));
  const rootPaths = values['trusted-root'] ?? [];
  const roots =
    rootPaths.length === 0
      ? [publicGoodTrustRoot()]
      : await Promise.all(rootPaths.map(async (path) => parseTrustedRoot(await readFile(path, 'utf8'), path)));
  const trust: BundleTrust = { keys, roots, identity };
  const signaturePath = values.signature ?? values.bundle ?? '';
  const artifact = await readFile(artifactPath);
  const signer = verifyArtifactSignature(
    artifact,
    { kind: values.signature !== undefined ? 'detached' : 'bundle', bytes: await readFile(signaturePath), source: signaturePath },
    trust,
  );
  io.out(`Verified OK: ${artifactPath} (sha256:${createHash('sha256').update(artifact).digest('hex')})`);
  io.out(`signer: ${describeSigner(signer)}`);
  const described = describeBundleArtifact(artifact, artifactPath);
  if (described !== undefined) io.out(described);
  return EXIT.ok;
}

async function keygen(argv: readonly string[], io: CliIo): Promise<number> {
  const { positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: {} });
  if (positionals.length > 1) throw usage('keygen takes at most one NAME');
  const name = positionals[0] ?? 'cosign';
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw usage(`key name ${JSON.stringify(name)} must be a plain file name`);
  const pair = generateSigningKeyPair();
  // 'wx' refuses to overwrite: losing a signing key to a typo would lock every appliance out.
  await writeFile(`${name}.key`, pair.privateKeyPem, { flag: 'wx', mode: 0o600 });
  await writeFile(`${name}.pub`, pair.publicKeyPem, { flag: 'wx', mode: 0o644 });
  const anchor = loadKeyAnchor(pair.publicKeyPem, `${name}.pub`);
  io.out(`Private key written to ${name}.key (keep it offline), public key to ${name}.pub`);
  io.out(`key id: ${anchor.keyId}`);
  return EXIT.ok;
}

async function signFile(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { key: { type: 'string' } } });
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0 || values.key === undefined) throw usage('sign needs FILE and --key NAME.key');
  const key = loadSigningKey(await readFile(values.key, 'utf8'), values.key);
  const blob = await readFile(file);
  const signature = signBlob(key, blob);
  // Sign-then-verify catches a key the verifier would refuse (unsupported curve, short RSA) now, not on every appliance.
  verifyArtifactSignature(blob, { kind: 'detached', bytes: Buffer.from(signature.toString('base64')), source: 'new signature' }, {
    keys: [loadKeyAnchor(publicKeyPemOf(key), values.key)],
    roots: [],
    identity: undefined,
  });
  io.out(signature.toString('base64'));
  return EXIT.ok;
}

class UsageError extends Error {}

function usage(message: string): UsageError {
  return new UsageError(message);
}

function isUsageError(error: unknown): error is Error {
  return error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
}
