// Pins what an appliance accepts beyond a trusted signature: bundle.name refuses another fleet's
// bundle, bundle.min_version and issued_at bound versions and times, and a state directory that
// cannot be read denies everything instead of passing for a first start.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { bundlePolicyEntry, bundleVerificationEntry } from '../src/audit/kinds.js';
import { loadYamlText } from '../src/config/yaml.js';
import { configSchema } from '../src/config/schema.js';
import { bundleFileFixture as fixture } from './support/bundle-file-fixture.js';

describe('bundle.name, bundle.min_version and issued_at', () => {
  test('refuses and audits a bundle named for another fleet, though a trusted key signed it', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 7, name: 'staging-egress' });
    const { manager, recorder } = f.manager({ pins: { name: 'prod-egress' }, mode: 'fail_closed' });
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['source:wrong_name']);
    const [event] = recorder.outcomes;
    assert.ok(event !== undefined);
    assert.match(event.detail, /named "staging-egress", this appliance takes "prod-egress" \(bundle\.name\)/);
    assert.equal(bundleVerificationEntry(event).outcome, 'wrong_name');
    assert.equal(manager.policy.kind, 'deny_all');
    // The refused bundle set no floor: this fleet's own lower version is still taken.
    await f.publish({ version: 3, name: 'prod-egress' });
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 3, rules: 1 });
  });

  test('re-checks the name of the last-known-good at start, so changing bundle.name retires it', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 2, name: 'staging-egress' });
    await f.runOnce();
    await rm(f.path);
    const { manager, recorder } = f.manager({ pins: { name: 'prod-egress' }, mode: 'cached_indefinite' });
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['last-known-good:wrong_name', 'source:fetch_failure']);
    assert.equal(manager.policy.kind, 'deny_all');
  });

  test('refuses versions below bundle.min_version, on a fresh state directory too', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 9 });
    const { manager, recorder } = f.manager({ pins: { minVersion: 10 } });
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['source:downgrade']);
    assert.match(recorder.outcomes[0]?.detail ?? '', /version 9 is below bundle\.min_version 10/);
    await f.publish({ version: 10 });
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 10, rules: 1 });
  });

  test('refuses a bundle issued more than five minutes ahead of the clock until its time comes', async (t) => {
    const f = await fixture(t);
    let now = new Date('2026-06-01T00:00:00Z');
    await f.publish({ version: 1, issuedAt: '2026-06-01T00:06:00Z' });
    const { manager, recorder } = f.manager({ now: () => now });
    await manager.start();
    assert.deepEqual(recorder.outcomeNames(), ['source:issued_in_future']);
    assert.match(recorder.outcomes[0]?.detail ?? '', /issued at 2026-06-01T00:06:00\.000Z, more than 5 minutes after this clock/);
    now = new Date('2026-06-01T00:01:00Z');
    await manager.refresh();
    assert.deepEqual(recorder.last, { kind: 'activate', version: 1, rules: 1 }, 'within the skew it is accepted');
  });

  test('the config takes bundle.name and bundle.min_version and refuses bad ones at their lines', () => {
    const base = 'bundle:\n  file: allowlist.yaml\n  keys: [k.pub]\n';
    const { value } = loadYamlText('sluice.yaml', `${base}  name: prod-egress\n  min_version: 12\n`, configSchema);
    assert.equal(value.bundle?.name, 'prod-egress');
    assert.equal(value.bundle?.min_version, 12);
    assert.throws(() => loadYamlText('sluice.yaml', `${base}  name: "prod egress"\n`, configSchema), /sluice\.yaml:4:9: .*names are 1-128 characters/);
    assert.throws(() => loadYamlText('sluice.yaml', `${base}  min_version: 0\n`, configSchema), /sluice\.yaml:4:16/);
  });
});

describe('an unreadable bundle state directory', () => {
  const corruptions: readonly (readonly [string, (stateDir: string) => Promise<void>])[] = [
    ['state.json is cut short', (dir) => writeFile(join(dir, 'state.json'), '{"highest_version": 9, "highest_sha2')],
    ['state.json cannot be read', async (dir) => {
      await rm(join(dir, 'state.json'));
      await mkdir(join(dir, 'state.json'));
    }],
    ['state.json holds a version that is not a number', (dir) => writeFile(join(dir, 'state.json'), '{"highest_version":"nine","highest_sha256":null,"last_success_at":null}')],
    ['active.json is not a stored bundle', (dir) => writeFile(join(dir, 'active.json'), '{"artifact": 9}')],
  ];

  for (const [label, corrupt] of corruptions) {
    test(`when ${label}, denies everything even in default_policy, fetches nothing and audits it once`, async (t) => {
      const f = await fixture(t);
      await f.publish({ version: 9 });
      await f.runOnce();
      await corrupt(f.stateDir);
      // An older bundle, correctly signed: exactly what the forgotten floor would let back in.
      await f.publish({ version: 3 });
      const { manager, recorder } = f.manager({ mode: 'default_policy' });
      await manager.start();
      await manager.refresh();
      assert.deepEqual(recorder.outcomeNames(), ['last-known-good:state_unreadable']);
      assert.match(recorder.outcomes[0]?.detail ?? '', /^allowlist bundle state is unreadable; failing closed: .*\/state\/(state|active)\.json: .*; repair it or/);
      const policy = manager.policy;
      assert.equal(policy.kind, 'deny_all');
      assert.deepEqual(recorder.seen, [{ kind: 'fallback', policy }]);
      assert.match(String(bundlePolicyEntry(policy).reason), /bundle state is unreadable/);
    });
  }

  test('takes the repaired state back at the next poll, with the floor it holds', async (t) => {
    const f = await fixture(t);
    await f.publish({ version: 9 });
    await f.runOnce();
    const saved = await readFile(join(f.stateDir, 'state.json'), 'utf8');
    await writeFile(join(f.stateDir, 'state.json'), 'garbage');
    await f.publish({ version: 3 });
    const { manager, recorder } = f.manager({ mode: 'cached_indefinite' });
    await manager.start();
    assert.equal(manager.policy.kind, 'deny_all');
    await writeFile(join(f.stateDir, 'state.json'), saved);
    await manager.refresh();
    assert.deepEqual(recorder.outcomeNames(), ['last-known-good:state_unreadable', 'last-known-good:accepted', 'source:downgrade']);
    assert.deepEqual(manager.policy, { kind: 'bundle', version: 9, stale: true });
  });
});
