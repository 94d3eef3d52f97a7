import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bundlePolicyEntry, bundleVerificationEntry } from '../src/audit/kinds.js';
import { FileBundleSource } from '../src/policy/bundle/file-source.js';
import { Metrics } from '../src/obs/metrics.js';
import { bundleYaml, makeKey, signBase64 } from './support/bundle-fixtures.js';
import { bundleFileFixture as fixture, signer } from './support/bundle-file-fixture.js';

describe('bundle lifecycle from a local file', () => {
  test('activates a signed bundle at start, persists it, and counts the outcome', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 12 });
    const metrics = new Metrics({ processMetrics: false });
    const { manager, recorder } = f.manager({ metrics });
    await manager.start();
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 12, rules: 1 }]);
    assert.deepEqual(recorder.outcomeNames(), ['source:accepted']);
    assert.match(recorder.outcomes[0]?.signer ?? '', /^key sha256:/);
    assert.deepEqual(manager.policy, { kind: 'bundle', version: 12, stale: false });
    const state = JSON.parse(await readFile(join(f.stateDir, 'state.json'), 'utf8')) as { highest_version: number };
    assert.equal(state.highest_version, 12);
    assert.match(await metrics.registry.metrics(), /sluice_bundle_version 12\n[\s\S]*sluice_bundle_verifications_total\{outcome="accepted"\} 1/);
    const [event] = recorder.outcomes;
    assert.ok(event !== undefined);
    const fields = bundleVerificationEntry(event);
    assert.deepEqual(JSON.parse(JSON.stringify(fields)), fields, 'audit fields are plain JSON');
    assert.equal(fields.version, 12);
    assert.deepEqual(bundlePolicyEntry(manager.policy), { kind: 'bundle_policy', policy: 'bundle', version: 12, stale: false, reason: null });
  });

  test('hot-swaps to a newer version when the watched file changes', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 1 });
    const { manager, recorder } = f.manager();
    await manager.start();
    await f.publish({ version: 2, hosts: ['a.example.com', 'b.example.com'] });
    await recorder.waitFor((seen) => seen.kind === 'activate' && seen.version === 2);
    assert.deepEqual(recorder.last, { kind: 'activate', version: 2, rules: 1 });
  });

  test('refuses an older signed bundle, the same version with other bytes, a bad signature, a schema error and an expired bundle', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 5 });
    const { manager, recorder } = f.manager({ mode: 'cached_indefinite' });
    await manager.start();
    const attempts: [string, () => Promise<void>][] = [
      ['downgrade', () => f.publish({ version: 4 })],
      ['replayed_version', () => f.publish({ version: 5, hosts: ['evil.example.com'] })],
      ['bad_signature', () => f.publish({ version: 6 }, makeKey('stranger.pub'))],
      ['bad_signature', async () => {
        await f.publish({ version: 6 });
        await writeFile(f.path, bundleYaml({ version: 6, hosts: ['evil.example.com'] }));
      }],
      ['schema_error', async () => {
        const text = 'name: x\nversion: 6\nissued_at: yesterday\nrules: []\n';
        await writeFile(`${f.path}.sig`, signBase64(signer, text));
        await writeFile(f.path, text);
      }],
      ['expired', () => f.publish({ version: 6, expiresAt: '2026-01-02T00:00:00Z' })],
    ];
    for (const [outcome, act] of attempts) {
      await act();
      await manager.refresh();
      assert.equal(recorder.outcomes.at(-1)?.outcome, outcome, recorder.outcomes.at(-1)?.detail);
      assert.deepEqual(manager.policy, { kind: 'bundle', version: 5, stale: true }, outcome);
    }
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 5, rules: 1 }]);
  });

  test('refuses a downgrade after a restart because the highest version is persisted', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 9 });
    await f.runOnce();
    await f.publish({ version: 8 });
    const second = f.manager({ mode: 'fail_closed' });
    await second.manager.start();
    assert.deepEqual(second.recorder.outcomeNames(), ['last-known-good:accepted', 'source:downgrade']);
    assert.equal(second.recorder.last?.kind, 'fallback');
  });

  for (const [mode, expected] of [
    ['fail_closed', 'deny_all'],
    ['cached_with_expiry', 'bundle'],
    ['cached_indefinite', 'bundle'],
    ['default_policy', 'default_policy'],
  ] as const) {
    test(`restarts with no reachable source in ${mode} mode and ${expected === 'bundle' ? 'keeps the last-known-good' : `falls back to ${expected}`}`, async (t) => {
      const f = await fixture(t);
      await f.publish({ version: 3 });
      await f.runOnce();
      await rm(f.path);
      const { manager, recorder } = f.manager({ mode });
      await manager.start();
      assert.deepEqual(recorder.outcomeNames(), ['last-known-good:accepted', 'source:fetch_failure']);
      assert.equal(manager.policy.kind, expected);
      assert.deepEqual(recorder.seen[0], expected === 'bundle' ? { kind: 'activate', version: 3, rules: 1 } : { kind: 'fallback', policy: manager.policy });
    });
  }

  test('cached_with_expiry fails closed once max_age has passed since the last success', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 3 });
    let now = new Date('2026-06-01T00:00:00Z');
    const { manager, recorder } = f.manager({ now: () => now });
    await manager.start();
    await rm(f.path);
    now = new Date(now.getTime() + 30_000);
    await manager.refresh();
    assert.deepEqual(manager.policy, { kind: 'bundle', version: 3, stale: true });
    now = new Date(now.getTime() + 31_000);
    await manager.refresh();
    assert.equal(manager.policy.kind, 'deny_all');
    assert.deepEqual(recorder.seen.map((seen) => seen.kind), ['activate', 'fallback']);
    await f.publish({ version: 3 });
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 3, rules: 1 });
  });

  test('refuses a tampered last-known-good at start', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 3 });
    await f.runOnce();
    const stored = JSON.parse(await readFile(join(f.stateDir, 'active.json'), 'utf8')) as { artifact: string };
    stored.artifact = Buffer.from(bundleYaml({ version: 3, hosts: ['evil.example.com'] })).toString('base64');
    await writeFile(join(f.stateDir, 'active.json'), JSON.stringify(stored));
    await rm(f.path);
    const { manager, recorder } = f.manager({ mode: 'cached_indefinite' });
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['last-known-good:bad_signature', 'source:fetch_failure']);
    assert.equal(manager.policy.kind, 'deny_all');
  });

  test('evaluates a report-mode bundle as a shadow until an enforcing one supersedes it', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 12 });
    const { manager, recorder } = f.manager();
    await manager.start();
    await f.publish({ version: 13, enforce: 'report' });
    await manager.refresh();
    assert.deepEqual(recorder.seen.slice(1), [{ kind: 'shadow', version: 13 }]);
    assert.deepEqual(manager.policy, { kind: 'bundle', version: 12, stale: false });
    await f.publish({ version: 14 });
    await manager.refresh();
    assert.deepEqual(recorder.seen.slice(2), [{ kind: 'activate', version: 14, rules: 1 }, { kind: 'shadow', version: null }]);
  });

  test('takes nothing into use when the state directory cannot be written', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 1 });
    const { manager, recorder } = f.manager({ stateDir: join(f.path, 'state') });
    await manager.start();
    assert.match(String(recorder.errors[0]), /ENOTDIR/);
    assert.deepEqual(recorder.outcomeNames(), []);
    assert.equal(manager.policy.kind, 'deny_all');
    assert.equal(recorder.last?.kind, 'fallback');
  });

  test('verifies a key-signed sigstore bundle file with no keyless trust root configured', async (t) => {
    const f = await fixture(t);
    const text = bundleYaml({ version: 4 });
    const digest = createHash('sha256').update(text).digest('base64');
    const sigstore = {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: { publicKey: { hint: signer.anchor.hint }, tlogEntries: [] },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest }, signature: signBase64(signer, text) },
    };
    await writeFile(f.path, text);
    await writeFile(`${f.path}.sigstore.json`, JSON.stringify(sigstore));
    const { manager, recorder } = f.manager({ source: new FileBundleSource({ path: f.path, sigstoreBundlePath: `${f.path}.sigstore.json`, maxBytes: 1 << 20 }) });
    await manager.start();
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 4, rules: 1 }], JSON.stringify(recorder.outcomes));
  });

  test('accepts bundles signed by any configured key during a rotation', async (t) => {
    const f = await fixture(t);
    const next = makeKey('next.pub');
    await f.publish({ version: 1 });
    const { manager, recorder } = f.manager({ keys: [signer, next] });
    await manager.start();
    await f.publish({ version: 2 }, next);
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 2, rules: 1 });
    assert.match(recorder.outcomes.at(-1)?.signer ?? '', new RegExp(next.anchor.keyId));
  });
});
