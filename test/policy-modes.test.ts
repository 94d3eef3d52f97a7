// End to end through the proxy: Strict denies what no rule allows, Learn allows and records it
// (and the records survive a restart), deny beats allow in both, rule file errors stop the start.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LearnStore } from '../src/policy/learn-store.js';
import { SourceError } from '../src/config/yaml.js';
import { curl } from './support/curl.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { join } from 'node:path';

describe('strict and learn modes through the proxy', () => {
  let origin: Origin;
  let dns: TestDnsServer;
  let rules: Record<string, string>;
  let config: (mode: string) => string;

  before(async () => {
    origin = await startHttpOrigin();
    dns = await startDnsServer({ localhost: { A: ['127.0.0.1'] }, 'learned.test': { A: ['127.0.0.1'] }, 'other.test': { A: ['127.0.0.1'] } });
    config = (mode) => `${ALLOW_LOOPBACK}\n  resolvers: ["127.0.0.1:${dns.port}"]\nmode: ${mode}`;
    rules = {
      'team.yaml': `rules:
  - { id: allow-origin, action: allow, hosts: [localhost], ports: [${origin.port}] }
  - { id: deny-origin-admin, action: deny, hosts: [localhost], ports: [${origin.port}], paths: ["/admin"] }
  - { id: allow-loopback-ip, action: allow, hosts: [127.0.0.1], ports: [${origin.port}] }
  - { id: deny-loopback-ip, action: deny, hosts: [127.0.0.1], ports: [${origin.port}], agents: [anonymous] }
`,
    };
  });

  after(async () => {
    await origin.close();
    await dns.close();
  });

  test('strict mode denies what no rule allows and allows what a rule does', async (t) => {
    const sluice = await startSluice({ config: config('strict'), rules });
    t.after(() => sluice.close());
    const allowed = await curl(['-x', sluice.proxyUrl, `http://localhost:${origin.port}/ok`]);
    assert.equal(allowed.status, 200);
    assert.match(allowed.headers, /sluice-decision: allow; reason=rule_allow; rule=allow-origin/i);
    const unmatched = await curl(['-x', sluice.proxyUrl, `http://other.test:${origin.port}/`]);
    assert.equal(unmatched.status, 403);
    assert.match(unmatched.headers, /HTTP\/1\.1 403 Denied by Sluice: no_matching_rule/);
    const body = JSON.parse(unmatched.body) as { error: { code: string; rule: string | null; request_id: string } };
    assert.equal(body.error.code, 'NO_MATCHING_RULE');
    assert.equal(body.error.rule, null);
  });

  test('deny beats allow, whatever the file order, in both modes', async (t) => {
    for (const mode of ['strict', 'learn']) {
      const sluice = await startSluice({ config: config(mode), rules });
      t.after(() => sluice.close());
      const denied = await curl(['-x', sluice.proxyUrl, `http://127.0.0.1:${origin.port}/x`]);
      assert.equal(denied.status, 403, mode);
      assert.match(denied.headers, /rule=deny-loopback-ip/);
      const path = await curl(['-x', sluice.proxyUrl, `http://localhost:${origin.port}/admin/panel`]);
      assert.equal(path.status, 403, `${mode}: a path-scoped deny rule applies`);
      assert.match(path.headers, /rule=deny-origin-admin/);
      const tunnel = await curl(['-x', sluice.proxyUrl, '-p', `http://localhost:${origin.port}/fine`]);
      assert.equal(tunnel.status, 403, `${mode}: a path-scoped deny rule also denies a CONNECT, whose path it cannot see`);
    }
  });

  test('learn mode allows and records unmatched destinations, and the records survive a restart', async () => {
    const first = await startSluice({ config: config('learn'), rules });
    const learned = await curl(['-x', first.proxyUrl, `http://learned.test:${origin.port}/new`]);
    await first.stop();
    assert.equal(learned.status, 200);
    assert.match(learned.headers, /sluice-decision: learn; reason=learn_unmatched/i);
    const second = await startSluice({ config: config('learn'), rules, dir: first.dir });
    try {
      const again = await curl(['-x', second.proxyUrl, `http://learned.test:${origin.port}/again`]);
      assert.equal(again.status, 200);
      await second.stop();
      const store = await LearnStore.open(join(second.stateDir, 'learn.json'), { readOnly: true });
      const entry = store.entries().find((candidate) => candidate.host === 'learned.test');
      assert.equal(entry?.count, 2, 'the count continued from the first run');
      assert.equal(entry?.agent, 'anonymous');
      assert.equal(entry?.port, origin.port);
      assert.ok(entry !== undefined && entry.firstSeen < entry.lastSeen);
    } finally {
      await second.close();
    }
  });

  test('a rule file with a public-suffix wildcard stops the start with file:line:column', async () => {
    await assert.rejects(
      startSluice({ rules: { 'bad.yaml': 'rules:\n  - id: too-wide\n    action: allow\n    hosts: ["*.co.uk"]\n' } }),
      (error: unknown) => {
        assert.ok(error instanceof SourceError);
        assert.match(error.message, /bad\.yaml:4:\d+: .*public suffix/);
        return true;
      },
    );
  });
});
