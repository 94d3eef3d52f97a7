// Time-boxed approvals end to end: a real Sluice in Strict mode, real curl through the proxy, a
// raw CONNECT tunnel. An approval opens exactly its agent and host, never a blocklisted host or a
// forbidden address, ends the second it expires (manual clock) or is revoked, cutting its live
// tunnels, and survives a restart.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ApprovalIndex } from '../src/policy/approvals.js';
import { decide } from '../src/policy/decide.js';
import { compileRules } from '../src/policy/rules.js';
import { destinationOf } from '../src/destination.js';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { curl } from './support/curl.js';
import { startDnsServer } from './support/dns-server.js';
import { ManualClock } from './support/manual-clock.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const AGENT_TOKEN = `agent-${randomBytes(12).toString('hex')}`;
const AGENTS = `agents:\n  - { name: builder, mode: strict, token_sha256: ["${createHash('sha256').update(AGENT_TOKEN).digest('hex')}"] }\n  - { name: tester, mode: strict }\n`;
// Tunnels here carry plain bytes, not TLS: the SNI screen would refuse them.
const CONFIG = config();

function config(connectExtra = ''): string {
  return `${ALLOW_LOOPBACK}\n  verify_tunnel_sni: false\n${connectExtra}mode: strict\n${AGENTS}`;
}

function through(sluice: RunningSluice, url: string): ReturnType<typeof curl> {
  return curl(['-x', sluice.proxyUrl, '-U', `builder:${AGENT_TOKEN}`, url]);
}

/** A TCP echo server: what a tunnel carries comes straight back. */
async function startEcho(): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A CONNECT tunnel as builder, open and proven to carry bytes both ways. */
async function openTunnel(sluice: RunningSluice, port: number): Promise<Socket> {
  const socket = connect(sluice.proxyPort, '127.0.0.1');
  await once(socket, 'connect');
  const credential = Buffer.from(`builder:${AGENT_TOKEN}`).toString('base64');
  socket.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Authorization: Basic ${credential}\r\n\r\n`);
  let received = '';
  while (!received.includes('\r\n\r\n')) received += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.match(received, /reason=approval_allow/);
  socket.write('ping');
  assert.equal(((await once(socket, 'data')) as [Buffer])[0].toString(), 'ping');
  return socket;
}

/** Resolves when the socket is closed by the other side; rejects after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tunnel still open ${ms} ms after its approval ended`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}

describe('decide() with approvals', () => {
  const agent = { name: 'builder', groups: [], mode: 'strict', via: 'token' } as const;
  const expiresMs = Date.UTC(2026, 0, 1, 12);
  const approval = { id: 'apr_1', agent: 'builder', host: 'api.example.com', port: 443, approver: 'ops', reason: 'deploy', ticket: null, createdMs: expiresMs - 3_600_000, expiresMs, overrideBlocklist: false };
  const policy = { rules: compileRules([]), anonymousAllowed: true, approvals: new ApprovalIndex([approval]) };

  test('allows until the millisecond before expiry and not at it, naming the approval', () => {
    const args = { agent, destination: destinationOf('api.example.com', 443) };
    assert.deepEqual(decide(policy, { ...args, now: expiresMs - 1 }), { verdict: 'allow', reason: 'approval_allow', ruleId: 'approval:apr_1', approval: 'apr_1' });
    assert.equal(decide(policy, { ...args, now: expiresMs }).reason, 'no_matching_rule');
  });

  test('covers only its agent, host and port', () => {
    const now = expiresMs - 1;
    assert.equal(decide(policy, { agent: { ...agent, name: 'tester' }, destination: destinationOf('api.example.com', 443), now }).reason, 'no_matching_rule');
    assert.equal(decide(policy, { agent, destination: destinationOf('api.example.com', 80), now }).reason, 'no_matching_rule');
    assert.equal(decide(policy, { agent, destination: destinationOf('www.example.com', 443), now }).reason, 'no_matching_rule');
  });
});

describe('approvals through a running Sluice', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const echo = keep(await startEcho());
    const sluice = keep(await startSluice({ config: `${CONFIG}approvals:\n  max_ttl_ms: 7200000\n` }));
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const viewer = await makeAdminToken(sluice, 'victor', 'viewer');
    return { origin, echo, sluice, approver, viewer };
  });

  async function grant(body: Record<string, unknown>, token = fixture().approver): Promise<string> {
    const reply = await adminApi(fixture().sluice, 'POST', '/v1/approvals', token, { agent: 'builder', ttl_ms: 3_600_000, reason: 'build needs it', ...body });
    assert.equal(reply.status, 201, JSON.stringify(reply.body));
    return (reply.body['approval'] as { id: string }).id;
  }

  test('a Strict-denied host is reachable once approved, and every decision names the approval', async () => {
    const { sluice, origin, viewer } = fixture();
    const url = `http://127.0.0.1:${origin.port}/approved`;
    const before = await through(sluice, url);
    assert.equal(before.status, 403);
    assert.match(before.headers, /reason=no_matching_rule/);
    const id = await grant({ host: '127.0.0.1', port: origin.port, ticket: 'CHG-1' });
    for (let round = 0; round < 2; round += 1) {
      const after = await through(sluice, url);
      assert.equal(after.status, 200);
      assert.match(after.headers, new RegExp(`reason=approval_allow; rule=approval:${id}`));
    }
    const records = await sluice.auditRecords();
    const decisions = records.filter((record) => record.kind === 'decision' && record['approval'] === id);
    assert.equal(decisions.length, 2);
    assert.ok(decisions.every((record) => record['reason'] === 'approval_allow'));
    const lifecycle = records.filter((record) => record.kind === 'approval' && record['id'] === id);
    assert.deepEqual(lifecycle.map((record) => record['action']), ['create', 'first_use']);
    assert.equal(lifecycle[0]?.['approver'], 'alice');
    assert.equal(lifecycle[0]?.['ticket'], 'CHG-1');
    assert.equal(lifecycle[1]?.['request_id'], decisions[0]?.['request_id']);
    const listed = await adminApi(sluice, 'GET', '/v1/approvals', viewer);
    assert.ok((listed.body['approvals'] as { id: string }[]).some((approval) => approval.id === id));
    assert.equal((await adminApi(sluice, 'DELETE', `/v1/approvals/${id}`, viewer)).status, 403, 'a viewer cannot revoke');
  });

  test('revoking cuts the live tunnel it let through within a second, and later requests are denied', async () => {
    const { sluice, echo, approver } = fixture();
    const id = await grant({ host: '127.0.0.1', port: echo.port });
    const tunnel = await openTunnel(sluice, echo.port);
    const revoked = await adminApi(sluice, 'DELETE', `/v1/approvals/${id}`, approver);
    assert.equal(revoked.status, 200);
    await closedWithin(tunnel, 1000);
    const socket = connect(sluice.proxyPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.end(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from(`builder:${AGENT_TOKEN}`).toString('base64')}\r\n\r\n`);
    const [reply] = (await once(socket, 'data')) as [Buffer];
    assert.match(reply.toString('latin1'), /^HTTP\/1\.1 403 /);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'approval' && record['action'] === 'revoke' && record['id'] === id), 'the revoke record');
    const records = await sluice.auditRecords();
    const revoke = records.find((record) => record.kind === 'approval' && record['action'] === 'revoke' && record['id'] === id);
    assert.equal(revoke?.['revoked_by'], 'alice');
    assert.equal(revoke?.['connections_cut'], 1);
    const tunnelDecision = records.find((record) => record.kind === 'decision' && record['approval'] === id);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'close' && record['request_id'] === tunnelDecision?.['request_id']), 'the close record');
    const close = (await sluice.auditRecords()).find((record) => record.kind === 'close' && record['request_id'] === tunnelDecision?.['request_id']);
    assert.equal(close?.['outcome'], 'APPROVAL_ENDED');
    assert.equal((await adminApi(sluice, 'DELETE', `/v1/approvals/${id}`, approver)).status, 404);
  });

  test('revoking also cuts a plain-HTTP response still streaming', async (t) => {
    const { sluice, approver } = fixture();
    const endless = createHttpServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('first chunk\n');
    });
    endless.listen(0, '127.0.0.1');
    await once(endless, 'listening');
    t.after(async () => {
      endless.closeAllConnections();
      await new Promise<void>((resolve) => endless.close(() => resolve()));
    });
    const port = (endless.address() as AddressInfo).port;
    const id = await grant({ host: '127.0.0.1', port });
    const socket = connect(sluice.proxyPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET http://127.0.0.1:${port}/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Authorization: Basic ${Buffer.from(`builder:${AGENT_TOKEN}`).toString('base64')}\r\n\r\n`);
    let received = '';
    while (!received.includes('first chunk')) received += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1');
    assert.match(received, new RegExp(`reason=approval_allow; rule=approval:${id}`));
    assert.equal((await adminApi(sluice, 'DELETE', `/v1/approvals/${id}`, approver)).status, 200);
    await closedWithin(socket, 1000);
    const decision = (await sluice.auditRecords()).find((record) => record.kind === 'decision' && record['approval'] === id);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'close' && record['request_id'] === decision?.['request_id']), 'the close record');
    const close = (await sluice.auditRecords()).find((record) => record.kind === 'close' && record['request_id'] === decision?.['request_id']);
    assert.equal(close?.['outcome'], 'APPROVAL_ENDED');
  });

  test('refuses a TTL above approvals.max_ttl_ms, an unknown agent and a bad host, naming the field', async () => {
    const { sluice, approver } = fixture();
    const long = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'builder', host: 'a.example', ttl_ms: 7_200_001, reason: 'x' });
    assert.equal(long.status, 400);
    assert.match((long.body['error'] as { message: string }).message, /ttl_ms: 7200001 is above approvals.max_ttl_ms \(7200000\)/);
    const stranger = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'nobody', host: 'a.example', ttl_ms: 60_000, reason: 'x' });
    assert.match((stranger.body['error'] as { message: string }).message, /agent: no agent named "nobody"/);
    const badHost = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'builder', host: 'a b', ttl_ms: 60_000, reason: 'x' });
    assert.match((badHost.body['error'] as { message: string }).message, /^invalid admin API request: host: invalid destination host/);
    const noReason = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'builder', host: 'a.example', ttl_ms: 60_000 });
    assert.match((noReason.body['error'] as { message: string }).message, /^invalid admin API request: reason/);
  });
});

describe('what an approval never passes', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const dns = keep(await startDnsServer({ 'bad.test': { A: ['127.0.0.1'] } }));
    const guarded = keep(await startSluice({ config: `mode: strict\n${AGENTS}` }));
    const dir = await mkdtemp(join(tmpdir(), 'sluice-approval-blocklist-'));
    await writeFile(join(dir, 'local.txt'), 'bad.test\n');
    const listed = keep(await startSluice({ dir, config: config(`  resolvers: ["${dns.server}"]\n`), blocklists: 'local: local.txt\nsources: []\n' }));
    return { origin, guarded, listed };
  });

  test('a forbidden address stays forbidden (loopback without connect.allow_cidrs)', async () => {
    const { guarded, origin } = fixture();
    const approver = await makeAdminToken(guarded, 'alice', 'approver');
    const reply = await adminApi(guarded, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', ttl_ms: 60_000, reason: 'try' });
    assert.equal(reply.status, 201);
    const result = await through(guarded, `http://127.0.0.1:${origin.port}/`);
    assert.equal(result.status, 403);
    assert.match(result.headers, /reason=destination_forbidden/);
  });

  test('a blocklisted host is not passed (with a warning), and override_blocklist needs the admin role', async () => {
    const { listed, origin } = fixture();
    const approver = await makeAdminToken(listed, 'alice', 'approver');
    const admin = await makeAdminToken(listed, 'root', 'admin');
    const plain = await adminApi(listed, 'POST', '/v1/approvals', approver, { agent: 'builder', host: 'bad.test', ttl_ms: 60_000, reason: 'try' });
    assert.equal(plain.status, 201);
    assert.deepEqual(plain.body['warnings'], ['bad.test is on the blocklist local: this approval does not pass it']);
    const denied = await through(listed, `http://bad.test:${origin.port}/`);
    assert.equal(denied.status, 403);
    assert.match(denied.headers, /reason=blocklisted/);
    const byApprover = await adminApi(listed, 'POST', '/v1/approvals', approver, { agent: 'builder', host: 'bad.test', ttl_ms: 60_000, reason: 'try', override_blocklist: true });
    assert.equal(byApprover.status, 403);
    const byAdmin = await adminApi(listed, 'POST', '/v1/approvals', admin, { agent: 'builder', host: 'bad.test', ttl_ms: 60_000, reason: 'false positive', override_blocklist: true });
    assert.equal(byAdmin.status, 201);
    const id = (byAdmin.body['approval'] as { id: string }).id;
    const passed = await through(listed, `http://bad.test:${origin.port}/`);
    assert.equal(passed.status, 200);
    assert.match(passed.headers, new RegExp(`reason=blocklist_override; rule=approval:${id}`));
  });
});

describe('approval expiry and restarts', () => {
  test('expiry on the clock ends the approval exactly and cuts its tunnel', async (t) => {
    const clock = new ManualClock();
    const echo = await startEcho();
    t.after(() => echo.close());
    const sluice = await startSluice({ config: CONFIG, clock });
    t.after(() => sluice.close());
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const reply = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', port: echo.port, ttl_ms: 60_000, reason: 'short' });
    const id = (reply.body['approval'] as { id: string; expires: string }).id;
    assert.equal((reply.body['approval'] as { expires: string }).expires, new Date(clock.now() + 60_000).toISOString());
    clock.advance(59_999);
    const tunnel = await openTunnel(sluice, echo.port);
    clock.advance(1);
    await closedWithin(tunnel, 1000);
    const listed = await adminApi(sluice, 'GET', '/v1/approvals', approver);
    assert.deepEqual(listed.body['approvals'], []);
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'approval' && record['action'] === 'expire'), 'the expire record');
    const expire = (await sluice.auditRecords()).find((record) => record.kind === 'approval' && record['action'] === 'expire');
    assert.equal(expire?.['id'], id);
    assert.equal(expire?.['connections_cut'], 1);
  });

  test('approvals persist across a restart; one that expired while Sluice was down is audited as expired', async (t) => {
    const origin = await startHttpOrigin();
    t.after(() => origin.close());
    const clock = new ManualClock();
    const first = await startSluice({ config: CONFIG, clock });
    t.after(() => first.close());
    const approver = await makeAdminToken(first, 'alice', 'approver');
    const grant = async (ttl: number): Promise<string> =>
      ((await adminApi(first, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', port: origin.port, ttl_ms: ttl, reason: `ttl ${ttl}` })).body['approval'] as { id: string }).id;
    const lasting = await grant(3_600_000);
    const brief = await grant(60_000);
    await first.stop();
    clock.advance(120_000);
    const second = await startSluice({ dir: first.dir, config: CONFIG, clock });
    t.after(() => second.stop());
    const listed = await adminApi(second, 'GET', '/v1/approvals', approver);
    assert.deepEqual((listed.body['approvals'] as { id: string }[]).map((approval) => approval.id), [lasting]);
    const result = await through(second, `http://127.0.0.1:${origin.port}/after-restart`);
    assert.equal(result.status, 200);
    assert.match(result.headers, new RegExp(`rule=approval:${lasting}`));
    await until(async () => (await second.auditRecords()).some((record) => record.kind === 'approval' && record['action'] === 'expire' && record['id'] === brief), 'the expire record of the brief approval');
  });
});
