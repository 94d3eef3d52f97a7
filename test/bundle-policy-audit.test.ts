// A change of the governing bundle takes effect only once its bundle_policy record is durable:
// with the audit disk full (a small tmpfs in a private mount namespace) a new bundle does not
// silently govern, everything is denied instead, and once the chain recovers the change is
// recorded and only then decides.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateSigningKeyPair, loadSigningKey, signBlob } from '../src/policy/bundle/signing.js';
import { curl } from './support/curl.js';
import { ManualTimer } from './support/manual-timer.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startHttpOrigin } from './support/origins.js';
import { runSluice } from './support/cli.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { mountSmallDisk } from './support/small-disk.js';
import { until } from './support/until.js';

type Line = Record<string, unknown> & { readonly seq: number; readonly kind: string };

if (insideLoopbackNamespace(import.meta.url)) {
  test('a new bundle is denied, not silently enforced, while its record cannot be written, and is recorded before it decides once the chain recovers', async () => {
    const origin = await startHttpOrigin();
    const keys = generateSigningKeyPair();
    const signingKey = loadSigningKey(keys.privateKeyPem, 'test.key');
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-audit-'));
    const publish = async (version: number): Promise<void> => {
      const text = `name: test-bundle\nversion: ${version}\nissued_at: 2026-01-01T00:00:00Z\nenforce: enforce\nrules:\n  - { id: origin-v${version}, action: allow, hosts: [localhost], ports: [${origin.port}] }\n`;
      await writeFile(join(dir, 'allowlist.yaml.sig'), signBlob(signingKey, Buffer.from(text)).toString('base64'));
      await writeFile(join(dir, 'allowlist.yaml'), text);
    };
    await writeFile(join(dir, 'cosign.pub'), keys.publicKeyPem);
    await publish(1);
    await mkdir(join(dir, 'state', 'audit'), { recursive: true });
    const disk = await mountSmallDisk(join(dir, 'state', 'audit'), 256);
    const timer = new ManualTimer();
    const running = await startSluice({
      dir,
      config: `${ALLOW_LOOPBACK}
mode: strict
bundle: { file: allowlist.yaml, keys: [cosign.pub], offline: fail_closed, poll_interval_ms: 1000 }
audit: { file: audit/audit.jsonl }`,
      auditRetry: timer.schedule,
    });
    const live = running.sluice.policy;
    const url = `http://localhost:${origin.port}/`;
    try {
      assert.match((await curl(['-x', running.proxyUrl, url])).headers, /rule=origin-v1/);
      await disk.fill();
      for (let tries = 0; (await curl(['-x', running.proxyUrl, url])).status !== 503; tries++) assert.ok(tries < 40, 'the full disk fails the chain');

      await publish(2);
      await until(() => live.current.bundleVersion !== 1, 'the manager to offer version 2');
      assert.equal(live.current.bundleVersion, undefined, 'version 2 does not govern unrecorded');
      assert.equal(live.current.noValidBundle, true, 'everything is denied meanwhile');

      await disk.free();
      timer.fire();
      await until(() => live.current.bundleVersion === 2, 'version 2 to be recorded and take effect');
      const allowed = await curl(['-x', running.proxyUrl, url]);
      assert.equal(allowed.status, 200);
      assert.match(allowed.headers, /rule=origin-v2/);
      await running.stop();

      const file = join(running.stateDir, 'audit', 'audit.jsonl');
      const records = (await readFile(file, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Line);
      const activation = records.find((record) => record.kind === 'bundle_policy' && record.version === 2);
      const decision = records.find((record) => record.kind === 'decision' && record.bundle_version === 2);
      assert.ok(activation !== undefined && decision !== undefined);
      assert.ok(activation.seq < decision.seq, 'the activation is on record before the first decision it governs');
      assert.ok(records.some((record) => record.kind === 'audit_recovery'));
      assert.equal((await runSluice(['audit', 'verify', file])).code, 0);
    } finally {
      await running.stop();
      await disk.unmount();
      await rm(dir, { recursive: true, force: true });
      await origin.close();
    }
  });
}
