// Sluice behind a real squid as its parent proxy (connect.upstream_proxy): allowed tunnels and
// plain-HTTP requests go through squid, which resolves the names; refused ones never reach it;
// no_proxy goes direct; and the parent's credentials appear in no log line or audit record.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Pool } from 'undici';
import { AddressGuard, connectorFor, loadParentProxies, resolveAndVet, SystemResolver } from '../src/connect/index.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';
import { curl } from './support/curl.js';
import { startDnsServer } from './support/dns-server.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startHttpOrigin, startHttpsOrigin } from './support/origins.js';
import { startParentSquid, type ParentSquid } from './support/parent-squid.js';
import { rawExchange } from './support/raw-http.js';
import { startSluice, type AuditLine, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const USER = 'sluice-egress';
const PASSWORD = 'pw-7f3a9c1e-parent';
const WRONG_PASSWORD = 'pw-0b2d-not-it';
/** Every spelling a leaked credential could take: as written, and inside Basic. */
const SECRETS = [PASSWORD, WRONG_PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), Buffer.from(`${USER}:${WRONG_PASSWORD}`).toString('base64')];

/** A Sluice whose every destination goes through `squid`, except no_proxy's direct.test. */
async function behindParent(squid: ParentSquid, options: { rules: string; dnsPort: number; credentials: string }): Promise<RunningSluice> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-parent-'));
  await writeFile(join(dir, 'parent.cred'), `${options.credentials}\n`, { mode: 0o600 });
  const config = `mode: strict
connect:
  resolvers: ["127.0.0.1:${options.dnsPort}"]
  allow_cidrs:
    - { name: parent-and-direct, cidr: 127.0.0.1/32 }
  upstream_proxy:
    - match: ["*"]
      proxy: http://127.0.0.1:${squid.port}
      credentials_file: parent.cred
  no_proxy: [direct.test]`;
  return startSluice({ dir, config, rules: { 'parent.yaml': options.rules } });
}

/** The squid access-log lines that name `host`, once squid has written what it will. */
async function squidLinesFor(squid: ParentSquid, host: string): Promise<string[]> {
  return (await squid.accessLog()).filter((line) => line.includes(host));
}

/** A port nothing listens on: bound once by the test, then released. */
async function unusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function decisionFor(sluice: RunningSluice, host: string): Promise<AuditLine> {
  let found: AuditLine | undefined;
  await until(async () => {
    found = (await sluice.auditRecords()).findLast((record) => record.kind === 'decision' && record.host === host);
    return found !== undefined;
  }, `a decision record for ${host}`);
  return found as AuditLine;
}

async function closeFor(sluice: RunningSluice, requestId: unknown): Promise<AuditLine> {
  let found: AuditLine | undefined;
  await until(async () => {
    found = (await sluice.auditRecords()).find((record) => record.kind === 'close' && record.request_id === requestId);
    return found !== undefined;
  }, `the close record of ${String(requestId)}`);
  return found as AuditLine;
}

if (insideLoopbackNamespace(import.meta.url)) {
  describe('a parent proxy (squid) in front of Sluice', () => {
    const fixture = suiteFixture(async (keep) => {
      const ca = keep(await makeTestCa(['origin.test']), (made) => made.remove());
      const https = keep(await startHttpsOrigin(ca));
      const http = keep(await startHttpOrigin());
      const squid = keep(await startParentSquid('origin.test', USER, PASSWORD));
      const dns = keep(await startDnsServer({ 'direct.test': { A: ['127.0.0.1'] } }));
      const closedPort = await unusedPort();
      const rules = `rules:
  - { id: origin, action: allow, hosts: [origin.test], ports: [${https.port}, ${http.port}, ${closedPort}] }
  - { id: direct, action: allow, hosts: [direct.test], ports: [${http.port}] }
  - { id: guarded-names, action: allow, hosts: [metadata.google.internal, localhost, api.localhost, 10.0.0.1], ports: [${http.port}] }
`;
      const sluice = keep(await behindParent(squid, { rules, dnsPort: dns.port, credentials: `${USER}:${PASSWORD}` }));
      const wrong = keep(await behindParent(squid, { rules, dnsPort: dns.port, credentials: `${USER}:${WRONG_PASSWORD}` }));
      return { ca, https, http, squid, dns, sluice, wrong, closedPort };
    });

    test('an allowed CONNECT goes through the parent, which resolves the name, with Sluice recording the parent', async () => {
      const { ca, https, squid, dns, sluice } = fixture();
      const result = await curl(['-x', sluice.proxyUrl, '--cacert', ca.caFile, `https://origin.test:${https.port}/through-parent`]);
      assert.equal(result.status, 200, result.stderr);
      assert.equal(https.requests.at(-1)?.url, '/through-parent');
      await until(async () => (await squidLinesFor(squid, `CONNECT origin.test:${https.port}`)).length === 1, 'squid logging the CONNECT');
      const [line] = await squidLinesFor(squid, `CONNECT origin.test:${https.port}`);
      assert.match(line ?? '', new RegExp(`TCP_TUNNEL/200 \\d+ CONNECT origin\\.test:${https.port} ${USER} `));
      assert.deepEqual(dns.questionsFor('origin.test'), [], 'Sluice never resolved the name itself');
      const decision = await decisionFor(sluice, 'origin.test');
      assert.equal(decision.verdict, 'allow');
      assert.equal(decision.parent_proxy, `127.0.0.1:${squid.port}`);
      assert.deepEqual(decision.addresses, []);
      assert.equal((await closeFor(sluice, decision.request_id)).upstream, `127.0.0.1:${squid.port}`);
    });

    test('a plain-HTTP request goes to the parent in absolute-form, and the origin never sees the credentials', async () => {
      const { http, squid, sluice } = fixture();
      for (const path of ['/plain?q=1', '/plain-again']) {
        const result = await curl(['-x', sluice.proxyUrl, `http://origin.test:${http.port}${path}`]);
        assert.equal(result.status, 200, result.stderr);
        assert.equal(http.requests.at(-1)?.url, path);
        assert.equal(http.requests.at(-1)?.headers['proxy-authorization'], undefined);
      }
      await until(async () => (await squidLinesFor(squid, `http://origin.test:${http.port}/plain`)).length === 2, 'squid logging both GETs');
      const lines = await squidLinesFor(squid, `http://origin.test:${http.port}/plain`);
      // squid leaves the query out of its log (strip_query_terms)
      assert.match(lines[0] ?? '', new RegExp(`TCP_MISS/200 \\d+ GET http://origin\\.test:${http.port}/plain\\? ${USER} `));
      assert.equal((await decisionFor(sluice, 'origin.test')).parent_proxy, `127.0.0.1:${squid.port}`);
    });

    test("an https:// forward's pooled connection is TLS to the origin inside the parent's tunnel, checked against the name", async () => {
      const { ca, https, squid } = fixture();
      const tunnels = async (): Promise<number> => (await squidLinesFor(squid, `CONNECT origin.test:${https.port} ${USER} `)).length;
      const before = await tunnels();
      const parents = await loadParentProxies(
        { upstream_proxy: [{ match: ['*'], proxy: `http://127.0.0.1:${squid.port}`, credentials_env: 'PARENT' }], no_proxy: [] },
        { baseDir: '/', env: { PARENT: `${USER}:${PASSWORD}` } },
      );
      const guard = new AddressGuard([{ name: 'parent', cidr: '127.0.0.1/32' }]);
      const vetted = await resolveAndVet(parseConnectTarget(`origin.test:${https.port}`), { addressGuard: guard, resolver: new SystemResolver(), parents });
      // The connector the forward path's pools use; given the test CA, as Sluice's own trusts the system store.
      const pool = new Pool(`https://origin.test:${https.port}`, { connect: connectorFor(vetted, { timeoutMs: 5_000, tls: { ca: ca.caCert } }) });
      try {
        const response = await pool.request({ path: '/pooled', method: 'GET' });
        assert.equal(response.statusCode, 200);
        assert.equal((JSON.parse(await response.body.text()) as { url: string }).url, '/pooled');
      } finally {
        await pool.close();
      }
      await until(async () => (await tunnels()) === before + 1, 'squid logging the pooled tunnel');
    });

    test('a WebSocket upgrade goes through the parent as a CONNECT tunnel', async () => {
      const { http, squid, sluice } = fixture();
      const authority = `origin.test:${http.port}`;
      const reply = await rawExchange(sluice.proxyPort, [`GET http://${authority}/ws HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nping`], { waitMs: 500 });
      assert.equal(reply.status, 101, reply.text);
      assert.ok(reply.text.endsWith('ping'), 'the origin echoed the bytes sent after the handshake');
      await until(async () => (await squidLinesFor(squid, `CONNECT ${authority} ${USER} `)).length === 1, 'squid logging the tunnel');
    });

    test('a CONNECT the parent cannot open answers PARENT_PROXY_REFUSED with its status', async () => {
      const { closedPort, sluice } = fixture();
      const result = await curl(['-x', sluice.proxyUrl, '-p', `http://origin.test:${closedPort}/`]);
      assert.equal(result.status, 502);
      assert.match(result.headers, /^Sluice-Decision: error; reason=parent_proxy_refused;/im);
      assert.match(JSON.stringify(sluice.logs), new RegExp(`answered 503 to CONNECT origin\\.test:${closedPort}`));
    });

    test('a request the policy refuses never reaches the parent', async () => {
      const { http, squid, sluice } = fixture();
      const forward = await curl(['-x', sluice.proxyUrl, `http://denied.test:${http.port}/`]);
      const tunnel = await curl(['-x', sluice.proxyUrl, '-p', `http://denied.test:${http.port}/`]);
      for (const result of [forward, tunnel]) {
        assert.equal(result.status, 403);
        assert.match(result.headers, /reason=no_matching_rule/);
      }
      // A later allowed request is logged after anything squid could have logged for these.
      await curl(['-x', sluice.proxyUrl, `http://origin.test:${http.port}/marker`]);
      await until(async () => (await squidLinesFor(squid, '/marker')).length === 1, 'squid logging the marker');
      assert.deepEqual(await squidLinesFor(squid, 'denied.test'), []);
    });

    test('metadata and localhost names and forbidden IP literals are refused by Sluice, not sent to the parent', async () => {
      const { http, squid, sluice } = fixture();
      const cases = [
        ['metadata.google.internal', 'metadata'],
        ['localhost', 'loopback'],
        ['api.localhost', 'loopback'],
        ['10.0.0.1', 'private'],
      ] as const;
      for (const [host, addressClass] of cases) {
        const result = await curl(['-x', sluice.proxyUrl, `http://${host}:${http.port}/`]);
        assert.equal(result.status, 403, host);
        assert.match(result.body, /DESTINATION_FORBIDDEN/, host);
        assert.equal((await decisionFor(sluice, host)).address_class, addressClass, host);
      }
      const log = (await squid.accessLog()).join('\n');
      for (const [host] of cases) assert.ok(!log.includes(`${host}:${http.port}`), `${host} reached squid`);
    });

    test('a no_proxy destination is resolved, vetted and dialled by Sluice itself', async () => {
      const { http, squid, dns, sluice } = fixture();
      const result = await curl(['-x', sluice.proxyUrl, `http://direct.test:${http.port}/direct`]);
      assert.equal(result.status, 200, result.stderr);
      assert.ok(dns.questionsFor('direct.test').length > 0);
      const decision = await decisionFor(sluice, 'direct.test');
      assert.equal(decision.parent_proxy, undefined);
      assert.deepEqual(decision.addresses, ['127.0.0.1']);
      assert.deepEqual(await squidLinesFor(squid, 'direct.test'), []);
    });

    test("credentials the parent refuses answer PARENT_PROXY_AUTH, never the parent's own 407", async () => {
      const { ca, http, https, wrong } = fixture();
      const tunnel = await curl(['-x', wrong.proxyUrl, '--cacert', ca.caFile, `https://origin.test:${https.port}/`]);
      const forward = await curl(['-x', wrong.proxyUrl, `http://origin.test:${http.port}/`]);
      for (const result of [tunnel, forward]) {
        assert.equal(result.status, 502);
        assert.match(result.headers, /^Sluice-Decision: error; reason=parent_proxy_auth;/im);
        assert.doesNotMatch(result.headers, /Proxy-Authenticate/i);
      }
      assert.match(forward.body, /"code":"PARENT_PROXY_AUTH"/);
    });

    test("the parent's credentials appear in no log line and no audit record", async () => {
      const { sluice, wrong } = fixture();
      for (const instance of [sluice, wrong]) {
        const written = [JSON.stringify(instance.logs), await readFile(join(instance.stateDir, 'audit.jsonl'), 'utf8')].join('\n');
        assert.ok(instance.logs.length > 0 && written.includes('parent_proxy'), 'the test read what was written');
        for (const secret of SECRETS) assert.ok(!written.includes(secret), `a credential leaked into ${instance.dir}`);
      }
    });
  });
}
