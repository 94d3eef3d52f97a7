// Strict-mode denials that no rule decided become access requests: one per agent, host and port,
// counted, bounded per agent, audited once, kept across restarts, cleared when a rule allows them.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import type { Agent } from '../src/agent.js';
import { AuditChain } from '../src/audit/chain.js';
import { startPolicyDns } from '../src/ingress/dns/index.js';
import { AccessRequests, ACCESS_REQUESTS_FILE } from '../src/policy/access-requests.js';
import { curl } from './support/curl.js';
import { startDnsServer } from './support/dns-server.js';
import { startHttpOrigin } from './support/origins.js';
import { policyDnsConfig, policyDnsSetup, DOCS_POLICY } from './support/policy-dns-config.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const TOKEN = 'asker-token-51c0';
const sha = createHash('sha256').update(TOKEN).digest('hex');
const AGENT: Agent = { name: 'asker', groups: [], mode: 'strict', via: 'token' };

async function openStore(dir: string, now: () => number, maxPerAgent = 100): Promise<{ store: AccessRequests; audit: AuditChain }> {
  const audit = await AuditChain.open(join(dir, 'audit.jsonl'), { fsync: false });
  const store = await AccessRequests.open(join(dir, ACCESS_REQUESTS_FILE), { audit, maxPerAgent, ttlMs: 3_600_000, now, flushMs: 10 });
  return { store, audit };
}

async function auditKinds(dir: string): Promise<Record<string, unknown>[]> {
  return (await readFile(join(dir, 'audit.jsonl'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((record) => record['kind'] === 'access_request');
}

describe('the access request store', () => {
  test('repeats raise the count; a request not seen for the TTL expires, audited', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-requests-'));
    let now = Date.UTC(2026, 0, 1);
    const { store, audit } = await openStore(dir, () => now);
    try {
      const first = store.record(AGENT, 'api.example.test', 443);
      now += 1000;
      store.record(AGENT, 'api.example.test', 443);
      assert.deepEqual(store.list().map(({ id, count, firstSeen, lastSeen }) => ({ id, count, firstSeen: firstSeen.getTime(), lastSeen: lastSeen.getTime() })), [
        { id: first?.id, count: 2, firstSeen: now - 1000, lastSeen: now },
      ]);
      now += 3_600_001;
      assert.deepEqual(store.list(), []);
      await store.close();
      await audit.close();
      assert.deepEqual((await auditKinds(dir)).map((record) => [record['event'], record['count']]), [['created', 1], ['expired', 2]]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an agent past max_requests_per_agent only adds to a count; other agents still ask', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-requests-'));
    const { store, audit } = await openStore(dir, Date.now, 3);
    try {
      for (let port = 1; port <= 50; port += 1) store.record(AGENT, 'scan.example.test', port);
      assert.equal(store.list({ agent: 'asker' }).length, 3);
      assert.equal(store.dropped, 47);
      assert.notEqual(store.record({ ...AGENT, name: 'other' }, 'scan.example.test', 1), null);
      await store.close();
      await audit.close();
      assert.equal((await auditKinds(dir)).length, 4, 'a flood of new destinations is not a flood of records');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unreadable store file is kept aside and the store starts empty', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-requests-'));
    await writeFile(join(dir, ACCESS_REQUESTS_FILE), '{"version": 1, "requests": [{"id": 7}]}');
    const { store, audit } = await openStore(dir, Date.now);
    try {
      assert.match(store.corrupt?.reason ?? '', /request 0 is malformed/);
      assert.deepEqual(store.list(), []);
      assert.ok((await readdir(dir)).some((name) => name.startsWith(`${ACCESS_REQUESTS_FILE}.corrupt-`)));
    } finally {
      await store.close();
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a name the policy DNS server refuses for want of a rule is recorded as a request for port 443', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-requests-'));
    const upstream = await startDnsServer({ 'docs.example.test': { A: ['93.184.216.34'] } });
    const { store, audit } = await openStore(dir, Date.now);
    const dns = await startPolicyDns({ ...policyDnsSetup(policyDnsConfig(upstream.server)), onRefused: (policy, agent, name) => store.recordIfUnknown(policy, agent, name, 443) });
    const socket = createSocket('udp4');
    try {
      for (const name of ['docs.example.test', 'unknown.example.test']) {
        socket.send(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name }] }), dns.port, '127.0.0.1');
        await once(socket, 'message', { signal: AbortSignal.timeout(3000) });
      }
      assert.deepEqual(store.list().map(({ agent, via, host, port }) => ({ agent, via, host, port })), [{ agent: 'tester', via: 'uid', host: 'unknown.example.test', port: 443 }]);
      assert.deepEqual(store.clearAllowed(DOCS_POLICY), [], 'the docs rule does not allow the unknown name');
    } finally {
      socket.close();
      await dns.close();
      await upstream.stop();
      await store.close();
      await audit.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('access requests from the proxy', () => {
  const fixture = suiteFixture(async (keep) => {
    const allowed = keep(await startHttpOrigin());
    const unknown = keep(await startHttpOrigin());
    const sluice = keep(
      await startSluice({
        config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: asker, groups: [team], token_sha256: ["${sha}"] }\n`,
        rules: { 'allowed.yaml': `rules:\n  - { id: allowed, action: allow, hosts: [127.0.0.1], ports: [${allowed.port}] }\n` },
      }),
      (running: RunningSluice) => running.close(),
    );
    return { allowed, unknown, sluice };
  });

  test('repeated no-rule denials over CONNECT and plain HTTP make one request, audited once', async () => {
    const { allowed, unknown, sluice } = fixture();
    const proxy = ['-x', sluice.proxyUrl, '--proxy-header', `Proxy-Authorization: Bearer ${TOKEN}`];
    assert.equal((await curl([...proxy, `http://127.0.0.1:${allowed.port}/`])).status, 200);
    for (let index = 0; index < 2; index += 1) assert.equal((await curl([...proxy, `http://127.0.0.1:${unknown.port}/x`])).status, 403);
    assert.equal((await curl([...proxy, '-p', `http://127.0.0.1:${unknown.port}/tunnelled`])).status, 403);
    const requests = sluice.sluice.accessRequests.list();
    assert.deepEqual(requests.map(({ agent, groups, host, port, count, status }) => ({ agent, groups, host, port, count, status })), [
      { agent: 'asker', groups: ['team'], host: '127.0.0.1', port: unknown.port, count: 3, status: 'pending' },
    ]);
    const created = (await sluice.auditRecords()).filter((record) => record.kind === 'access_request');
    assert.deepEqual(created.map((record) => [record['event'], record['id'], record['agent'], record['port']]), [['created', requests[0]?.id, 'asker', unknown.port]]);
  });

  test('requests survive a restart', async () => {
    const { unknown, sluice } = fixture();
    await sluice.stop();
    const restarted = await startSluice({ dir: sluice.dir, config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: asker, groups: [team], token_sha256: ["${sha}"] }\n` });
    try {
      assert.deepEqual(restarted.sluice.accessRequests.list().map(({ host, port, count }) => ({ host, port, count })), [{ host: '127.0.0.1', port: unknown.port, count: 3 }]);
      const request = restarted.sluice.accessRequests.list()[0];
      assert.equal(restarted.sluice.accessRequests.deny(request?.id ?? '', 'alice')?.status, 'denied');
      assert.equal(restarted.sluice.accessRequests.get(request?.id ?? '')?.deniedBy, 'alice');
      assert.equal(restarted.sluice.accessRequests.deny('req_missing', 'alice'), undefined);
      await until(async () => (await restarted.auditRecords()).some((record) => record.kind === 'access_request' && record['event'] === 'denied' && record['by'] === 'alice'), 'the denial to be audited');
    } finally {
      await restarted.stop();
    }
  });

  test('a rule reload that allows a pending request clears it, audited', async () => {
    const { unknown, sluice } = fixture();
    const running = await startSluice({ dir: sluice.dir, config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: asker, groups: [team], token_sha256: ["${sha}"] }\n` });
    try {
      const proxy = ['-x', running.proxyUrl, '--proxy-header', `Proxy-Authorization: Bearer ${TOKEN}`];
      assert.equal((await curl([...proxy, `http://localhost:${unknown.port}/other-name`])).status, 403);
      const pending = running.sluice.accessRequests.list({ status: 'pending' });
      assert.deepEqual(pending.map(({ host }) => host), ['localhost']);
      await writeFile(join(running.dir, 'rules', 'team.yaml'), `rules:\n  - { id: team-localhost, action: allow, hosts: [localhost], ports: [${unknown.port}], groups: [team] }\n`);
      await running.sluice.reload();
      assert.deepEqual(running.sluice.accessRequests.list({ status: 'pending' }), []);
      assert.equal(running.sluice.accessRequests.list({ status: 'denied' }).length, 1, 'a denied request stays denied');
      await until(async () => (await running.auditRecords()).some((record) => record.kind === 'access_request' && record['event'] === 'cleared' && record['host'] === 'localhost'), 'the clearing to be audited');
    } finally {
      await running.stop();
    }
  });
});
