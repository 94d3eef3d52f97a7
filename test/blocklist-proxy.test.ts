// Malicious-domain blocklists in the running proxy: a listed name or parent domain is denied in
// Learn mode too, naming its source; a listed address cannot be reached through an innocent
// name; only an override_blocklist allow rule passes, and that pass is audited.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { curl } from './support/curl.js';
import { startDnsServer } from './support/dns-server.js';
import { startFeedServer } from './support/feed-server.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type AuditLine } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

describe('blocklists in the running proxy', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const feed = keep(await startFeedServer());
    feed.set('/domainswild2', { body: '# OISD-style wildcard list\n*.malware.test\nphish.test\n' });
    const dns = keep(await startDnsServer({
      'innocent.test': { A: ['127.0.0.9'] },
      'partner.malware.test': { A: ['127.0.0.1'] },
      'fine.test': { A: ['127.0.0.1'] },
    }));
    const dir = await mkdtemp(join(tmpdir(), 'sluice-blocklist-proxy-'));
    await writeFile(join(dir, 'local.txt'), '# operators\nlocal-bad.test\n127.0.0.9\n');
    const sluice = keep(await startSluice({
      dir,
      config: `${ALLOW_LOOPBACK}\n  resolvers: ["127.0.0.1:${dns.port}"]\nmode: learn`,
      blocklists: `local: local.txt\nsources:\n  - name: test-oisd\n    url: ${feed.url('/domainswild2')}\n    format: wildcard\n`,
      rules: {
        'team.yaml': `rules:
  - { id: partner, action: allow, hosts: [partner.malware.test], ports: [${origin.port}], override_blocklist: true }
  - { id: phish-not-overridden, action: allow, hosts: [phish.test], ports: [${origin.port}] }
`,
      },
    }));
    // The feed is downloaded in the background right after start: wait until it is in force.
    const deadline = Date.now() + 10_000;
    while (!/sluice_blocklist_entries\{source="test-oisd"\} 2/.test(await (await fetch(`${sluice.adminUrl}/metrics`)).text())) {
      if (Date.now() > deadline) throw new Error('the test feed was never loaded');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { origin, sluice };
  });

  function records(): Promise<AuditLine[]> {
    return fixture().sluice.auditRecords();
  }

  function fetchThrough(host: string, connect = false): ReturnType<typeof curl> {
    const { sluice, origin } = fixture();
    return curl(['-x', sluice.proxyUrl, ...(connect ? ['-p'] : []), `http://${host}:${origin.port}/`]);
  }

  test('a host under a listed wildcard is denied in Learn mode, naming the feed and entry', async () => {
    const result = await fetchThrough('a.b.malware.test');
    assert.equal(result.status, 403);
    assert.match(result.headers, /reason=blocklisted; rule=blocklist:test-oisd/);
    const body = JSON.parse(result.body) as { error: { code: string } };
    assert.equal(body.error.code, 'BLOCKLISTED');
    const record = (await records()).filter((entry) => entry.kind === 'decision' && entry.host === 'a.b.malware.test').at(-1);
    assert.equal(record?.blocklist_source, 'test-oisd');
    assert.equal(record?.blocklist_entry, 'malware.test');
  });

  test('the blocklist beats an ordinary allow rule, for CONNECT as well', async () => {
    const plain = await fetchThrough('phish.test');
    assert.equal(plain.status, 403);
    assert.match(plain.headers, /reason=blocklisted/);
    const tunnel = await fetchThrough('phish.test', true);
    assert.equal(tunnel.status, 403);
  });

  test('operators\' local.txt names are blocked too', async () => {
    const result = await fetchThrough('local-bad.test');
    assert.equal(result.status, 403);
    assert.match(result.headers, /rule=blocklist:local/);
  });

  test('a listed address is denied when an innocent name resolves to it', async () => {
    const result = await fetchThrough('innocent.test');
    assert.equal(result.status, 403);
    assert.match(result.headers, /reason=blocklisted; rule=blocklist:local/);
    const record = (await records()).filter((entry) => entry.kind === 'decision' && entry.host === 'innocent.test').at(-1);
    assert.equal(record?.blocklist_entry, '127.0.0.9');
  });

  test('only an allow rule with override_blocklist passes a listed host, and says so', async () => {
    const result = await fetchThrough('partner.malware.test');
    assert.equal(result.status, 200, result.headers);
    assert.match(result.headers, /sluice-decision: allow; reason=blocklist_override; rule=partner/i);
    const record = (await records()).filter((entry) => entry.kind === 'decision' && entry.host === 'partner.malware.test').at(-1);
    assert.equal(record?.reason, 'blocklist_override');
    assert.equal(record?.blocklist_source, 'test-oisd');
  });

  test('unlisted hosts still follow Learn mode, and blocked decisions are counted by reason', async () => {
    const { sluice } = fixture();
    assert.equal((await fetchThrough('fine.test')).status, 200);
    const metrics = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
    assert.match(metrics, /sluice_decisions_total\{verdict="deny",reason="blocklisted"\} [1-9]/);
    assert.match(metrics, /sluice_blocklist_entries\{source="test-oisd"\} 2/);
    const status = (await (await fetch(`${sluice.adminUrl}/status/blocklists`)).json()) as unknown[];
    assert.ok(Array.isArray(status) && status.length > 0);
  });
});
