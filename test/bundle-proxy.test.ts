// Signed allowlist bundles governing the running proxy: decisions follow the verified bundle and
// record its version, a new version swaps in without a restart, a replayed older one does not,
// with no valid bundle the offline mode decides (deny all, or the local rules), and another
// fleet's bundle or an unreadable state directory is refused and audited.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateSigningKeyPair, loadSigningKey, signBlob } from '../src/policy/bundle/signing.js';
import { curl } from './support/curl.js';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';

interface Record {
  kind: string;
  verdict?: string;
  reason?: string | null;
  rule?: string | null;
  bundle_version?: number | null;
  shadow_would_deny?: boolean;
  policy?: string;
  outcome?: string;
}

function bundleText(version: number, action: 'allow' | 'deny', port: number, enforce = 'enforce', name = 'test-bundle'): string {
  return `name: ${name}
version: ${version}
issued_at: 2026-01-01T00:00:00Z
enforce: ${enforce}
rules:
  - id: origin-v${version}
    action: ${action}
    hosts: [localhost]
    ports: [${port}]
`;
}

describe('signed bundles in the running proxy', () => {
  let origin: Origin;
  const keys = generateSigningKeyPair();
  const signingKey = loadSigningKey(keys.privateKeyPem, 'test.key');

  before(async () => {
    origin = await startHttpOrigin();
  });
  after(() => origin.close());

  /** A directory for one instance holding the trusted public key; the instance's close() removes it. */
  async function trustingDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-proxy-'));
    await writeFile(join(dir, 'cosign.pub'), keys.publicKeyPem);
    return dir;
  }

  /** Writes a signed bundle (and its detached .sig) into the instance directory. */
  async function publish(dir: string, text: string, signature?: Buffer): Promise<void> {
    await writeFile(join(dir, 'allowlist.yaml.sig'), (signature ?? signBlob(signingKey, Buffer.from(text))).toString('base64'));
    await writeFile(join(dir, 'allowlist.yaml'), text);
  }

  async function start(dir: string | undefined, offline: string, extra = ''): Promise<RunningSluice> {
    const config = `${ALLOW_LOOPBACK}
  resolvers: []
mode: strict
bundle:
  file: allowlist.yaml
  keys: [cosign.pub]
  offline: ${offline}
  poll_interval_ms: 1000
${extra}`;
    return startSluice({ config, rules: { 'local.yaml': `rules:\n  - { id: local-origin, action: allow, hosts: [localhost], ports: [${origin.port}] }\n` }, ...(dir === undefined ? {} : { dir }) });
  }

  async function records(sluice: RunningSluice): Promise<Record[]> {
    return (await readFile(join(sluice.stateDir, 'audit.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record);
  }

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + 8000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** A request is refused as no_valid_bundle, and the chain holds a verification with `outcome`. */
  async function expectRefusedFor(sluice: RunningSluice, outcome: string): Promise<void> {
    const result = await curl(['-x', sluice.proxyUrl, `http://localhost:${origin.port}/`]);
    assert.equal(result.status, 403, result.headers);
    assert.match(result.headers, /reason=no_valid_bundle/);
    assert.ok((await records(sluice)).some((record) => record.kind === 'bundle_verification' && record.outcome === outcome), outcome);
  }

  test('decides by the verified bundle, records its version, hot-swaps a newer one and refuses a replayed older one', async () => {
    const dir = await trustingDir();
    const v1 = bundleText(1, 'allow', origin.port);
    await publish(dir, v1);
    const sluice = await start(dir, 'fail_closed');
    try {
      const url = `http://localhost:${origin.port}/bundle`;
      const first = await curl(['-x', sluice.proxyUrl, url]);
      assert.equal(first.status, 200);
      assert.match(first.headers, /rule=origin-v1/);
      const decision = (await records(sluice)).filter((record) => record.kind === 'decision').at(-1);
      assert.equal(decision?.bundle_version, 1, 'the decision names the bundle version it was taken under');

      await publish(dir, bundleText(2, 'deny', origin.port));
      await until(async () => (await curl(['-x', sluice.proxyUrl, url])).status === 403, 'version 2 to take effect');
      const denied = await curl(['-x', sluice.proxyUrl, url]);
      assert.match(denied.headers, /rule=origin-v2/);

      await publish(dir, v1);
      await until(async () => (await records(sluice)).some((record) => record.kind === 'bundle_verification' && record.outcome === 'downgrade'), 'the replay to be refused');
      assert.equal((await curl(['-x', sluice.proxyUrl, url])).status, 403, 'the replayed v1 did not take effect');
    } finally {
      await sluice.close();
    }
  });

  test('with a tampered bundle and offline fail_closed, every request is denied as no_valid_bundle', async () => {
    const dir = await trustingDir();
    const text = bundleText(1, 'allow', origin.port);
    await publish(dir, text.replace('localhost', 'localhost, evil.example'), signBlob(signingKey, Buffer.from(text)));
    const sluice = await start(dir, 'fail_closed');
    try {
      await expectRefusedFor(sluice, 'bad_signature');
    } finally {
      await sluice.close();
    }
  });

  test('with offline default_policy, the local rules decide when no bundle verifies', async () => {
    const dir = await trustingDir();
    const sluice = await start(dir, 'default_policy');
    try {
      const result = await curl(['-x', sluice.proxyUrl, `http://localhost:${origin.port}/`]);
      assert.equal(result.status, 200);
      assert.match(result.headers, /rule=local-origin/);
      assert.ok((await records(sluice)).some((record) => record.kind === 'bundle_policy' && record.policy === 'default_policy'));
    } finally {
      await sluice.close();
    }
  });

  test('a report-mode bundle counts and audits what it would deny without enforcing it', async () => {
    const dir = await trustingDir();
    await publish(dir, bundleText(1, 'allow', origin.port));
    const sluice = await start(dir, 'fail_closed');
    try {
      // A candidate version is rolled out in report mode beside the enforced one.
      await publish(dir, bundleText(2, 'deny', origin.port, 'report'));
      await until(async () => (await records(sluice)).some((record) => record.kind === 'bundle_shadow'), 'the report bundle to be shadowed');
      const result = await curl(['-x', sluice.proxyUrl, `http://localhost:${origin.port}/`]);
      assert.equal(result.status, 200, 'the enforced bundle still decides');
      assert.match(result.headers, /rule=origin-v1/);
      const decision = (await records(sluice)).filter((record) => record.kind === 'decision').at(-1);
      assert.equal(decision?.shadow_would_deny, true);
      const metrics = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
      assert.match(metrics, /sluice_bundle_shadow_would_deny_total\{reason="rule_deny"\} 1/);
    } finally {
      await sluice.close();
    }
  });

  test('refuses and audits a bundle named for another fleet (bundle.name), though the trusted key signed it', async () => {
    const dir = await trustingDir();
    await publish(dir, bundleText(1, 'allow', origin.port, 'enforce', 'staging-egress'));
    const sluice = await start(dir, 'fail_closed', '  name: prod-egress\n');
    try {
      await expectRefusedFor(sluice, 'wrong_name');
    } finally {
      await sluice.close();
    }
  });

  test('after a restart with an unreadable bundle state, denies every request even under default_policy, and audits why', async () => {
    const dir = await trustingDir();
    await publish(dir, bundleText(2, 'allow', origin.port));
    const first = await start(dir, 'default_policy');
    await first.stop();
    await writeFile(join(first.stateDir, 'bundle', 'state.json'), '{"highest_version": 2, "highest_sha');
    // Signed by the same key but older: on a forgotten floor this would be accepted.
    await publish(dir, bundleText(1, 'allow', origin.port));
    const sluice = await start(dir, 'default_policy');
    try {
      await expectRefusedFor(sluice, 'state_unreadable');
      const policies = (await records(sluice)).filter((record) => record.kind === 'bundle_policy');
      assert.equal(policies.at(-1)?.policy, 'deny_all');
      assert.match(policies.at(-1)?.reason ?? '', /bundle state is unreadable/);
    } finally {
      await sluice.close();
    }
  });
});
