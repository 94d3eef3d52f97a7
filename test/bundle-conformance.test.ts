import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PUBLIC_GOOD_TRUSTED_ROOT } from '../src/policy/bundle/public-good-root.js';
import { CONFORMANCE_VECTORS as VECTORS, runSluice } from './support/cli.js';

const DEFAULT_IDENTITY =
  'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';

interface ConformanceCase {
  readonly name: string;
  readonly dir: string;
  readonly mustFail: boolean;
  readonly isDsse: boolean;
}

function cases(): ConformanceCase[] {
  return readdirSync(VECTORS)
    .filter((name) => statSync(join(VECTORS, name)).isDirectory())
    .sort()
    .map((name) => {
      const dir = join(VECTORS, name);
      return { name, dir, mustFail: name.endsWith('_fail'), isDsse: readFileSync(join(dir, 'bundle.sigstore.json'), 'utf8').includes('"dsseEnvelope"') };
    });
}

function optional(dir: string, file: string): string | undefined {
  const path = join(dir, file);
  return existsSync(path) ? path : undefined;
}

function verifyArgs(c: ConformanceCase): string[] {
  const artifact = optional(c.dir, 'artifact') ?? join(VECTORS, 'a.txt');
  const args = ['bundle', 'verify', artifact, '--bundle', join(c.dir, 'bundle.sigstore.json')];
  const root = optional(c.dir, 'trusted_root.json');
  if (root !== undefined) args.push('--trusted-root', root);
  const key = optional(c.dir, 'key.pub');
  if (key !== undefined) {
    args.push('--key', key);
  } else {
    const identity = optional(c.dir, 'identity');
    const issuer = optional(c.dir, 'issuer');
    args.push('--certificate-identity', identity === undefined ? DEFAULT_IDENTITY : readFileSync(identity, 'utf8').trim());
    args.push('--certificate-oidc-issuer', issuer === undefined ? DEFAULT_ISSUER : readFileSync(issuer, 'utf8').trim());
  }
  return args;
}

describe('sluice bundle verify against the sigstore conformance vectors', () => {
  const all = cases();

  test('the vectors folder holds both verifying and refused cases', () => {
    assert.ok(all.filter((c) => c.mustFail).length >= 20);
    assert.ok(all.filter((c) => !c.mustFail && !c.isDsse).length >= 10);
  });

  test('embeds the same public-good trusted root as the vectors', () => {
    assert.deepEqual(PUBLIC_GOOD_TRUSTED_ROOT, JSON.parse(readFileSync(join(VECTORS, 'public-good-trusted_root.json'), 'utf8')));
  });

  for (const c of all) {
    if (c.mustFail) {
      test(`refuses ${c.name}`, async () => {
        const result = await runSluice(verifyArgs(c));
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.match(result.stderr, /refused: allowlist bundle rejected: [a-z ]+: /);
        assert.doesNotMatch(result.stdout, /Verified OK/);
      });
    } else if (c.isDsse) {
      test(`refuses the DSSE attestation ${c.name} as an allowlist signature`, async () => {
        const result = await runSluice(verifyArgs(c));
        assert.equal(result.code, 1, result.stdout + result.stderr);
        assert.match(result.stderr, /DSSE bundles are not allowlist signatures/);
      });
    } else {
      test(`verifies ${c.name}`, async () => {
        const result = await runSluice(verifyArgs(c));
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.match(result.stdout, /^Verified OK: /);
        assert.match(result.stdout, optional(c.dir, 'key.pub') !== undefined ? /signer: key sha256:[0-9a-f]{64} / : /signer: certificate identity https:\/\//);
      });
    }
  }

  test('refuses a verifying keyless bundle when the pinned identity differs', async () => {
    const happy = join(VECTORS, 'happy-path-v0.3');
    const result = await runSluice([
      'bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', join(happy, 'bundle.sigstore.json'),
      '--certificate-identity', `${DEFAULT_IDENTITY}x`, '--certificate-oidc-issuer', DEFAULT_ISSUER,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /untrusted identity: .*expected/);
  });

  test('matches the identity by an RE2 pattern and refuses a wrong issuer', async () => {
    const bundle = join(VECTORS, 'happy-path-v0.3', 'bundle.sigstore.json');
    const base = ['bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', bundle, '--certificate-identity-regexp', '^https://github\\.com/sigstore-conformance/'];
    assert.equal((await runSluice([...base, '--certificate-oidc-issuer', DEFAULT_ISSUER])).code, 0);
    const wrong = await runSluice([...base, '--certificate-oidc-issuer', 'https://accounts.google.com']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /untrusted identity/);
  });

  test('refuses a keyless bundle when no identity is pinned', async () => {
    const result = await runSluice(['bundle', 'verify', join(VECTORS, 'a.txt'), '--bundle', join(VECTORS, 'happy-path-v0.3', 'bundle.sigstore.json')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /pin the signer with --certificate-identity/);
  });

  test('refuses a verifying bundle over a different artifact', async () => {
    const result = await runSluice([
      'bundle', 'verify', join(VECTORS, 'README.md'), '--bundle', join(VECTORS, 'happy-path-v0.3', 'bundle.sigstore.json'),
      '--certificate-identity', DEFAULT_IDENTITY, '--certificate-oidc-issuer', DEFAULT_ISSUER,
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /bad signature/);
  });
});
