import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configSchema } from '../src/config/schema.js';
import { loadYamlText } from '../src/config/yaml.js';
import { createBundleManager, parseOciReference } from '../src/policy/bundle/from-config.js';
import { bundleYaml, makeKey, signBase64 } from './support/bundle-fixtures.js';
import { configIssues } from './support/config-issues.js';
import { Recorder } from './support/bundle-harness.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const issues = configIssues;

describe('bundle section of sluice.yaml', () => {
  test('fills in the defaults: detached signatures, cached_with_expiry for a day', () => {
    const { value } = loadYamlText('sluice.yaml', 'bundle:\n  file: allowlist.yaml\n  keys: [cosign.pub]\n', configSchema);
    assert.equal(value.bundle?.signature, 'detached');
    assert.equal(value.bundle?.offline, 'cached_with_expiry');
    assert.equal(value.bundle?.max_age_ms, 86_400_000);
  });

  test('refuses two sources, no trust anchor, a half-pinned keyless identity and plain http, at their lines', () => {
    assert.match(issues('bundle:\n  file: a.yaml\n  url: https://x.example/a.yaml\n  keys: [k.pub]\n'), /sluice\.yaml:2:3: bundle: give exactly one of file, url and oci/);
    assert.match(issues('bundle:\n  file: a.yaml\n'), /list at least one trusted key, or configure keyless/);
    assert.match(issues('bundle:\n  file: a.yaml\n  keyless:\n    identity: me@example.com\n'), /sluice\.yaml:4:5: bundle\.keyless: pin exactly one of identity/);
    assert.match(issues('bundle:\n  url: http://x.example/a.yaml\n  keys: [k.pub]\n'), /sluice\.yaml:2:8: bundle\.url: bundle URLs must be https:\/\//);
    assert.match(issues('bundle:\n  file: a.yaml\n  keys: [k.pub]\n  offline: cached\n'), /bundle\.offline/);
  });

  test('splits OCI references by tag and by digest', () => {
    assert.deepEqual(parseOciReference('registry.example.com:5000/team/allowlist:prod'), { registry: 'https://registry.example.com:5000', repository: 'team/allowlist', reference: 'prod' });
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseOciReference(`ghcr.io/acme/allowlist@${digest}`), { registry: 'https://ghcr.io', repository: 'acme/allowlist', reference: digest });
  });

  test('builds a manager that verifies a local bundle with keys relative to the config file', async (t) => {
    const key = makeKey();
    await writeFile(join(dir, 'cosign.pub'), key.publicPem);
    const text = bundleYaml({ version: 2 });
    await writeFile(join(dir, 'allowlist.yaml'), text);
    await writeFile(join(dir, 'allowlist.yaml.sig'), signBase64(key, text));
    const { value } = loadYamlText('sluice.yaml', 'bundle:\n  file: allowlist.yaml\n  keys: [cosign.pub]\n  offline: fail_closed\n', configSchema);
    assert.ok(value.bundle !== undefined);
    const recorder = new Recorder();
    const manager = await createBundleManager({ config: value.bundle, baseDir: dir, stateDir: join(dir, 'state'), callbacks: recorder });
    t.after(() => manager.stop());
    await manager.start();
    assert.deepEqual(recorder.seen, [{ kind: 'activate', version: 2, rules: 1 }]);
  });
});
