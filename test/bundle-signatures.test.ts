import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { cosignLegacyLayout } from './support/cosign-legacy-layout.js';
import { suiteFixture } from './support/suite-fixture.js';
import { CONFORMANCE_VECTORS as VECTORS, runSluice } from './support/cli.js';

const run = promisify(execFile);
const ALLOWLIST = 'name: team-allowlist\nversion: 7\nissued_at: 2026-11-23T12:00:00Z\nenforce: enforce\nrules:\n  - id: openai\n    action: allow\n    hosts: [api.openai.com]\n';

let dir: string;
let artifact: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-sig-'));
  artifact = join(dir, 'allowlist.yaml');
  await writeFile(artifact, ALLOWLIST);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openssl(...args: string[]): Promise<string> {
  return (await run('openssl', args, { cwd: dir })).stdout;
}

async function writePublicKey(name: string, key: KeyObject): Promise<string> {
  const path = join(dir, `${name}.pub`);
  await writeFile(path, key.export({ type: 'spki', format: 'pem' }));
  return path;
}

async function writeSignature(name: string, signature: Buffer): Promise<string> {
  const path = join(dir, `${name}.sig`);
  await writeFile(path, `${signature.toString('base64')}\n`);
  return path;
}

/** An openssl-made key pair signing with `openssl dgst`/`pkeyutl`, returning the .pub and base64 .sig paths. */
async function opensslSigned(name: string, genpkey: string[], signArgs: string[]): Promise<{ pub: string; sig: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  const raw = join(dir, `${name}.sig.bin`);
  await openssl('genpkey', ...genpkey, '-out', key);
  await openssl('pkey', '-in', key, '-pubout', '-out', pub);
  await openssl(...signArgs.map((arg) => (arg === 'KEY' ? key : arg === 'OUT' ? raw : arg)), artifact);
  const sig = await writeSignature(name, await readFile(raw));
  return { pub, sig };
}

function verify(sig: string, ...keys: string[]): ReturnType<typeof runSluice> {
  return runSluice(['bundle', 'verify', artifact, '--signature', sig, ...keys.flatMap((key) => ['--key', key])]);
}

describe('detached signatures with public keys, every algorithm', () => {
  test('verifies ECDSA P-256 signed with SHA-256 like cosign, and prints the key id and bundle summary', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = await writePublicKey('p256', publicKey);
    const sig = await writeSignature('p256', sign('sha256', Buffer.from(ALLOWLIST), privateKey));
    const result = await verify(sig, pub);
    assert.equal(result.code, 0, result.stderr);
    const keyId = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    assert.match(result.stdout, new RegExp(`signer: key sha256:${keyId} \\(ecdsa-p256`));
    assert.match(result.stdout, /bundle: team-allowlist version 7, 1 rules, enforce mode/);
  });

  test('verifies ECDSA P-256 made and signed by openssl dgst -sha256', async () => {
    const { pub, sig } = await opensslSigned('ossl-p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['dgst', '-sha256', '-sign', 'KEY', '-out', 'OUT']);
    assert.equal((await verify(sig, pub)).code, 0);
  });

  test('verifies ECDSA P-384 signed with SHA-384', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const result = await verify(await writeSignature('p384', sign('sha384', Buffer.from(ALLOWLIST), privateKey)), await writePublicKey('p384', publicKey));
    assert.equal(result.code, 0, result.stderr);
  });

  test('verifies pure Ed25519 signed by openssl pkeyutl -rawin', async () => {
    const { pub, sig } = await opensslSigned('ed', ['-algorithm', 'ED25519'], ['pkeyutl', '-sign', '-rawin', '-inkey', 'KEY', '-out', 'OUT', '-in']);
    const result = await verify(sig, pub);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\(ed25519/);
  });

  test('verifies RSA PKCS#1 v1.5 with SHA-256', async () => {
    const { pub, sig } = await opensslSigned('rsa', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['dgst', '-sha256', '-sign', 'KEY', '-out', 'OUT']);
    assert.equal((await verify(sig, pub)).code, 0);
  });

  test('verifies RSA-PSS with SHA-256 from a plain RSA key', async () => {
    const { pub, sig } = await opensslSigned('rsapss', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], [
      'dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sign', 'KEY', '-out', 'OUT',
    ]);
    assert.equal((await verify(sig, pub)).code, 0);
  });

  test('verifies RSA-PSS from an RSASSA-PSS key', async () => {
    const { pub, sig } = await opensslSigned('pss-key', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'], [
      'dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sign', 'KEY', '-out', 'OUT',
    ]);
    const result = await verify(sig, pub);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\(rsa-pss/);
  });

  test('refuses RSA keys shorter than 2048 bits', async () => {
    const { pub, sig } = await opensslSigned('rsa1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], ['dgst', '-sha256', '-sign', 'KEY', '-out', 'OUT']);
    const result = await verify(sig, pub);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /under 2048 bits/);
  });
});

describe('tampering and key rotation', () => {
  // Files in the file's directory, removed with it: nothing of their own to close.
  const fixture = suiteFixture(async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      privateKey,
      pub: await writePublicKey('current', publicKey),
      sig: await writeSignature('current', sign('sha256', Buffer.from(ALLOWLIST), privateKey)),
      otherPub: await writePublicKey('other', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey),
    };
  });

  test('refuses the signature over a body with one byte changed', async () => {
    const { pub, sig } = fixture();
    const tampered = join(dir, 'tampered.yaml');
    await writeFile(tampered, ALLOWLIST.replace('version: 7', 'version: 8'));
    const result = await runSluice(['bundle', 'verify', tampered, '--signature', sig, '--key', pub]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad signature: .*does not verify the artifact with any trusted key/);
  });

  test('refuses a signature with one bit flipped', async () => {
    const { pub, sig } = fixture();
    const bytes = Buffer.from((await readFile(sig, 'utf8')).trim(), 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    const result = await verify(await writeSignature('flipped', bytes), pub);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad signature/);
  });

  test('refuses a signature file that is not base64', async () => {
    const { pub } = fixture();
    const bad = join(dir, 'bad.sig');
    await writeFile(bad, 'not*base64!');
    const result = await verify(bad, pub);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /malformed: .*not standard base64/);
  });

  test('refuses a valid signature checked against a different key', async () => {
    const { sig, otherPub } = fixture();
    const result = await verify(sig, otherPub);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad signature/);
  });

  test('refuses when no key is given for a detached signature', async () => {
    const { sig } = fixture();
    const result = await runSluice(['bundle', 'verify', artifact, '--signature', sig]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs the trusted public key/);
  });

  test('accepts signatures by either anchor during a key rotation and nothing else', async () => {
    const { pub, sig } = fixture();
    const next = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const nextPub = await writePublicKey('next', next.publicKey);
    const nextSig = await writeSignature('next', sign('sha256', Buffer.from(ALLOWLIST), next.privateKey));
    assert.equal((await verify(sig, pub, nextPub)).code, 0, 'old key still trusted');
    const rotated = await verify(nextSig, pub, nextPub);
    assert.equal(rotated.code, 0, 'new key trusted');
    assert.match(rotated.stdout, /next\.pub/);
    assert.equal((await verify(sig, nextPub)).code, 1, 'old key retired');
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal((await verify(await writeSignature('stranger', sign('sha256', Buffer.from(ALLOWLIST), stranger.privateKey)), pub, nextPub)).code, 1);
  });

  test('verifies a key-signed sigstore v0.3 bundle with no transparency-log entry and refuses its tampered digest', async () => {
    const { pub, otherPub, privateKey } = fixture();
    const signature = sign('sha256', Buffer.from(ALLOWLIST), privateKey).toString('base64');
    const digest = createHash('sha256').update(ALLOWLIST).digest('base64');
    const bundle = {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: '' }, tlogEntries: [] },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest }, signature },
    };
    const path = join(dir, 'key.sigstore.json');
    await writeFile(path, JSON.stringify(bundle));
    const ok = await runSluice(['bundle', 'verify', artifact, '--bundle', path, '--key', otherPub, '--key', pub]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /via sigstore bundle/);
    bundle.messageSignature.messageDigest.digest = createHash('sha256').update('other').digest('base64');
    await writeFile(path, JSON.stringify(bundle));
    const bad = await runSluice(['bundle', 'verify', artifact, '--bundle', path, '--key', pub]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /message digest is not the artifact's/);
  });

  test("verifies cosign's older bundle layout holding only base64Signature", async () => {
    const { pub, sig } = fixture();
    const path = join(dir, 'legacy.bundle');
    await writeFile(path, JSON.stringify({ base64Signature: (await readFile(sig, 'utf8')).trim() }));
    const result = await runSluice(['bundle', 'verify', artifact, '--bundle', path, '--key', pub]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /via cosign bundle/);
  });
});

describe("cosign's older --bundle layout with a Rekor entry", () => {
  async function legacyFrom(caseName: string, mutate?: (legacy: Record<string, unknown>) => void): Promise<string> {
    const legacy = cosignLegacyLayout(JSON.parse(await readFile(join(VECTORS, caseName, 'bundle.sigstore.json'), 'utf8')));
    mutate?.(legacy);
    const path = join(dir, `${caseName}-${mutate === undefined ? 'legacy' : 'mutated'}.bundle`);
    await writeFile(path, JSON.stringify(legacy));
    return path;
  }

  const identity = [
    '--certificate-identity', 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main',
    '--certificate-oidc-issuer', 'https://token.actions.githubusercontent.com',
  ];

  test('verifies a keyless cosign bundle (cert + rekorBundle) offline against the embedded root', async () => {
    const result = await runSluice(['bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', await legacyFrom('happy-path-v0.1'), ...identity]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /certificate identity https:\/\/github.com\/sigstore-conformance\/.* via cosign bundle/);
  });

  test('verifies a key-signed cosign bundle with its Rekor entry', async () => {
    const keyCase = join(VECTORS, 'managed-key-happy-path');
    const result = await runSluice(['bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', await legacyFrom('managed-key-happy-path'), '--key', join(keyCase, 'key.pub')]);
    assert.equal(result.code, 0, result.stderr);
  });

  test('refuses a cosign bundle whose signed entry timestamp was altered', async () => {
    const path = await legacyFrom('happy-path-v0.1', (legacy) => {
      const rekor = legacy['rekorBundle'] as { Payload: { integratedTime: number } };
      rekor.Payload.integratedTime += 1;
    });
    const result = await runSluice(['bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', path, ...identity]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /inclusion promise/);
  });
});

describe('keygen and sign for teams without cosign', () => {
  test('writes a P-256 key pair whose signatures openssl dgst -sha256 -verify and sluice accept', async () => {
    const work = await mkdtemp(join(dir, 'keygen-'));
    const made = await runSluice(['bundle', 'keygen', 'team'], { cwd: work });
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await stat(join(work, 'team.key'))).mode & 0o777, 0o600);
    assert.match(await openssl('pkey', '-pubin', '-in', join(work, 'team.pub'), '-text', '-noout'), /NIST CURVE: P-256|prime256v1/);
    const signed = await runSluice(['bundle', 'sign', artifact, '--key', join(work, 'team.key')]);
    assert.equal(signed.code, 0, signed.stderr);
    const raw = join(work, 'sig.bin');
    await writeFile(raw, Buffer.from(signed.stdout.trim(), 'base64'));
    assert.match(await openssl('dgst', '-sha256', '-verify', join(work, 'team.pub'), '-signature', raw, artifact), /Verified OK/);
    const sigFile = join(work, 'allowlist.sig');
    await writeFile(sigFile, signed.stdout);
    const verified = await runSluice(['bundle', 'verify', artifact, '--signature', sigFile, '--key', join(work, 'team.pub')]);
    assert.equal(verified.code, 0, verified.stderr);
  });

  test('refuses to overwrite an existing key', async () => {
    const work = await mkdtemp(join(dir, 'keygen-twice-'));
    assert.equal((await runSluice(['bundle', 'keygen'], { cwd: work })).code, 0);
    const before = await readFile(join(work, 'cosign.key'), 'utf8');
    const again = await runSluice(['bundle', 'keygen'], { cwd: work });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /EEXIST/);
    assert.equal(await readFile(join(work, 'cosign.key'), 'utf8'), before);
  });

  test('rejects usage errors with exit code 2', async () => {
    assert.equal((await runSluice(['bundle', 'verify', artifact])).code, 2);
    assert.equal((await runSluice(['bundle', 'verify', artifact, '--signature', 'a', '--bundle', 'b'])).code, 2);
    assert.equal((await runSluice(['bundle', 'frobnicate'])).code, 2);
    assert.equal((await runSluice(['bundle', 'keygen', '../escape'])).code, 2);
  });
});
