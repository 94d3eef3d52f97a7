// Builds allowlist bundle documents and signs them the way cosign sign-blob does (ECDSA P-256,
// SHA-256, DER, base64), with keys made fresh in each test.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { loadKeyAnchor, type KeyAnchor } from '../../src/policy/bundle/public-key.js';

export interface TestKey {
  readonly privateKey: KeyObject;
  readonly publicPem: string;
  readonly anchor: KeyAnchor;
}

export function makeKey(name = 'test.pub'): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicPem, anchor: loadKeyAnchor(publicPem, name) };
}

export interface BundleFields {
  readonly version: number;
  readonly enforce?: 'enforce' | 'report';
  readonly issuedAt?: string;
  readonly expiresAt?: string;
  readonly hosts?: readonly string[];
  readonly name?: string;
}

export function bundleYaml(fields: BundleFields): string {
  const hosts = fields.hosts ?? [`v${fields.version}.example.com`];
  return [
    `name: ${fields.name ?? 'test-allowlist'}`,
    `version: ${fields.version}`,
    `issued_at: ${fields.issuedAt ?? '2026-01-01T00:00:00Z'}`,
    ...(fields.expiresAt === undefined ? [] : [`expires_at: ${fields.expiresAt}`]),
    `enforce: ${fields.enforce ?? 'enforce'}`,
    'rules:',
    '  - id: allowed',
    '    action: allow',
    `    hosts: [${hosts.join(', ')}]`,
    '',
  ].join('\n');
}

/** base64 of an ECDSA/SHA-256 DER signature: cosign's --output-signature format */
export function signBase64(key: TestKey, bytes: Buffer | string): string {
  return sign('sha256', Buffer.from(bytes), key.privateKey).toString('base64');
}
