import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HttpsBundleSource } from '../src/policy/bundle/https-source.js';
import { compileIdentityPolicy } from '../src/policy/bundle/identity-policy.js';
import { BundleManager } from '../src/policy/bundle/manager.js';
import type { OfflineMode } from '../src/policy/bundle/offline-policy.js';
import { OciBundleSource } from '../src/policy/bundle/oci-source.js';
import type { BundleSource } from '../src/policy/bundle/source.js';
import { publicGoodTrustRoot } from '../src/policy/bundle/trusted-root.js';
import type { BundleTrust } from '../src/policy/bundle/verify-signature.js';
import { bundleYaml, makeKey, signBase64 } from './support/bundle-fixtures.js';
import { cosignLegacyLayout } from './support/cosign-legacy-layout.js';
import { Recorder } from './support/bundle-harness.js';
import { makeTls, startServer, staticFiles, TestRegistry, type LocalServer, type TlsMaterial } from './support/bundle-servers.js';
import { CONFORMANCE_VECTORS } from './support/cli.js';

const key = makeKey('publisher.pub');
let root: string;
let tls: TlsMaterial;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-bundle-src-'));
  tls = await makeTls(root);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function managerFor(
  t: { after: (fn: () => Promise<void> | void) => void },
  source: BundleSource,
  stateDir?: string,
  mode: OfflineMode = 'cached_with_expiry',
  trust: BundleTrust = { keys: [key.anchor], roots: [], identity: undefined },
) {
  const recorder = new Recorder();
  const manager = new BundleManager({
    source,
    trust,
    stateDir: stateDir ?? join(root, `state-${counter++}`),
    offline: { mode, maxAgeMs: 3_600_000 },
    pollIntervalMs: 3_600_000,
    fetchTimeoutMs: 3_000,
    callbacks: recorder,
  });
  t.after(() => manager.stop());
  return { manager, recorder };
}

describe('HTTPS bundle source', () => {
  const files = new Map<string, { body: Buffer; modified: Date }>();
  const behaviour: { status?: number; stall?: boolean } = {};
  let server: LocalServer;

  function publish(version: number, tamper = false): void {
    const text = bundleYaml({ version });
    files.set('/allowlist.yaml', { body: Buffer.from(tamper ? bundleYaml({ version, hosts: ['evil.example.com'] }) : text), modified: new Date() });
    files.set('/allowlist.yaml.sig', { body: Buffer.from(signBase64(key, text)), modified: new Date() });
  }

  function source(overrides: { maxBytes?: number; timeoutMs?: number; url?: string } = {}): HttpsBundleSource {
    return new HttpsBundleSource({
      url: overrides.url ?? `${server.origin}/allowlist.yaml`,
      signatureKind: 'detached',
      maxBytes: overrides.maxBytes ?? 65_536,
      timeoutMs: overrides.timeoutMs ?? 2_000,
      ca: tls.cert,
    });
  }

  before(async () => {
    server = await startServer(tls, (request, response) => staticFiles(files, behaviour)(request, response));
  });
  after(async () => {
    await server.close();
  });

  test('activates a signed bundle, then revalidates it with a conditional GET answered 304', async (t) => {
    publish(1);
    const { manager, recorder } = managerFor(t, source());
    await manager.start();
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 1, rules: 1 }]);
    const before = server.requests.length;
    await manager.refresh();
    const revalidation = server.requests.slice(before);
    assert.equal(revalidation.length, 1, 'a 304 needs no signature fetch');
    assert.match(String(revalidation[0]?.headers['if-none-match']), /^"[0-9a-f]{16}"$/);
    assert.ok(revalidation[0]?.headers['if-modified-since']);
    assert.deepEqual(recorder.outcomeNames(), ['source:accepted']);
    assert.deepEqual(manager.policy, { kind: 'bundle', version: 1, stale: false });
    publish(2);
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 2, rules: 1 });
  });

  test('does not let a 304 vouch for a bundle it refused', async (t) => {
    publish(3, true);
    const { manager, recorder } = managerFor(t, source(), undefined, 'fail_closed');
    await manager.start();
    await manager.refresh();
    assert.deepEqual(recorder.outcomeNames(), ['source:bad_signature', 'source:bad_signature']);
    assert.equal(server.requests.at(-2)?.headers['if-none-match'], undefined);
    assert.equal(manager.policy.kind, 'deny_all');
  });

  test('records a fetch failure for an oversized body, a server error, a stalled server and a plain-http URL', async (t) => {
    publish(4);
    const oversized = managerFor(t, source({ maxBytes: 64 }));
    await oversized.manager.start();
    assert.match(oversized.recorder.outcomes[0]?.detail ?? '', /over the 64-byte cap|exceeds the 64-byte cap/);

    behaviour.status = 503;
    const failing = managerFor(t, source());
    await failing.manager.start();
    assert.match(failing.recorder.outcomes[0]?.detail ?? '', /HTTP 503/);
    delete behaviour.status;

    behaviour.stall = true;
    const stalled = managerFor(t, source({ timeoutMs: 300 }));
    await stalled.manager.start();
    delete behaviour.stall;
    assert.equal(stalled.recorder.outcomes[0]?.outcome, 'fetch_failure');
    // The source's own 300 ms timeout gave up, not the manager's 3 s fetch deadline, however busy the machine.
    assert.match(stalled.recorder.outcomes[0]?.detail ?? '', /Headers Timeout/);

    const plain = managerFor(t, source({ url: 'http://127.0.0.1:9/allowlist.yaml' }));
    await plain.manager.start();
    assert.match(plain.recorder.outcomes[0]?.detail ?? '', /only https:\/\/ sources/);
    for (const { recorder } of [oversized, failing, stalled, plain]) {
      assert.equal(recorder.outcomes[0]?.outcome, 'fetch_failure');
      assert.equal(recorder.last?.kind, 'fallback');
    }
  });
});

describe('OCI registry bundle source', () => {
  const registry = new TestRegistry();
  let server: LocalServer;

  function source(reference = 'prod'): OciBundleSource {
    return new OciBundleSource({ registry: server.origin, repository: 'team/allowlist', reference, maxBytes: 65_536, timeoutMs: 2_000, ca: tls.cert });
  }

  before(async () => {
    server = await startServer(tls, (request, response) => registry.handler(request, response));
    registry.origin = server.origin;
  });
  after(async () => {
    await server.close();
  });

  test('pulls by tag with anonymous token auth, follows the blob redirect and verifies the cosign signature', async (t) => {
    registry.push('prod', bundleYaml({ version: 20 }), key);
    const { manager, recorder } = managerFor(t, source());
    await manager.start();
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 20, rules: 1 }], JSON.stringify(recorder.outcomes));
    assert.ok(server.requests.some((request) => request.url.startsWith('/token?') && request.url.includes('scope=repository%3Ateam%2Fallowlist%3Apull')));
    assert.ok(server.requests.some((request) => request.url.includes('/manifests/sha256-') && request.headers.authorization === `Bearer ${registry.token}`));
    assert.ok(server.requests.some((request) => request.url.startsWith('/storage/')));
    const before = server.requests.length;
    await manager.refresh();
    assert.ok(server.requests.slice(before).every((request) => request.url.endsWith('/manifests/prod')), 'unchanged manifest: no blob or signature fetch');
    registry.push('prod', bundleYaml({ version: 21 }), key);
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 21, rules: 1 });
  });

  test('refuses a moved tag whose signature image signs another manifest', async (t) => {
    const signed = registry.push('stale', bundleYaml({ version: 30 }), key);
    const moved = registry.push('stale', bundleYaml({ version: 31, hosts: ['evil.example.com'] }), makeKey('attacker.pub'));
    registry.sign(moved, signed, key);
    const { manager, recorder } = managerFor(t, source('stale'));
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['source:bad_signature']);
    assert.match(recorder.outcomes[0]?.detail ?? '', /for manifest sha256:[0-9a-f]{64}, not sha256:/);
    assert.equal(manager.policy.kind, 'deny_all');
  });

  test('pins a manifest by digest and restarts offline from the OCI last-known-good', async (t) => {
    const digest = registry.push('pinned', bundleYaml({ version: 40 }), key);
    const stateDir = join(root, 'oci-lkg');
    const first = managerFor(t, source(digest), stateDir);
    await first.manager.start();
    assert.deepEqual(first.recorder.seen, [{ kind: 'activate', version: 40, rules: 1 }]);
    first.manager.stop();
    const offline = new OciBundleSource({ registry: 'https://127.0.0.1:9', repository: 'team/allowlist', reference: digest, maxBytes: 65_536, timeoutMs: 500, ca: tls.cert });
    const second = managerFor(t, offline, stateDir);
    await second.manager.start();
    assert.deepEqual(second.recorder.outcomeNames(), ['last-known-good:accepted', 'source:fetch_failure']);
    assert.deepEqual(second.manager.policy, { kind: 'bundle', version: 40, stale: true });
  });

  test('carries keyless cosign annotations (certificate, Rekor bundle) into verification with the identity pinned', async (t) => {
    const legacy = cosignLegacyLayout(JSON.parse(await readFile(join(CONFORMANCE_VECTORS, 'happy-path-v0.1', 'bundle.sigstore.json'), 'utf8')));
    const digest = registry.push('keyless', bundleYaml({ version: 50 }), key);
    // A real keyless signature, but over the conformance artifact rather than a cosign payload:
    // verification must get through certificate, Rekor entry and signature, and stop at the payload.
    registry.signatureImage(digest, [
      {
        payload: await readFile(join(CONFORMANCE_VECTORS, 'a.txt')),
        annotations: {
          'dev.cosignproject.cosign/signature': String(legacy['base64Signature']),
          'dev.sigstore.cosign/certificate': Buffer.from(String(legacy['cert']), 'base64').toString('utf8'),
          'dev.sigstore.cosign/bundle': JSON.stringify(legacy['rekorBundle']),
        },
      },
    ]);
    const pinned = (identity: string) => ({
      keys: [],
      roots: [publicGoodTrustRoot()],
      identity: compileIdentityPolicy({ identity, issuer: 'https://token.actions.githubusercontent.com' }),
    });
    const beacon = 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
    const right = managerFor(t, source('keyless'), undefined, 'fail_closed', pinned(beacon));
    await right.manager.start();
    assert.deepEqual(right.recorder.outcomeNames(), ['source:malformed']);
    assert.match(right.recorder.outcomes[0]?.detail ?? '', /payload is not JSON/);
    const wrong = managerFor(t, source('keyless'), undefined, 'fail_closed', pinned('https://github.com/someone/else'));
    await wrong.manager.start();
    assert.deepEqual(wrong.recorder.outcomeNames(), ['source:untrusted_identity']);
  });
});
