// Two Sluice replicas sharing one real redis-server (state.backend: redis): they race on one
// inference budget and never settle beyond it, an approval granted on one is honoured by the
// other within a second, access requests and an agent's rate are the fleet's, and with Redis gone
// budgets fail closed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { BudgetLimits, RedisBudgets } from '../src/meter/index.js';
import type { PlanRequest } from '../src/meter/budgets.js';
import { createLogger } from '../src/obs/log.js';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { configIssues } from './support/config-issues.js';
import { curl, type CurlResult } from './support/curl.js';
import { startFakeProvider, type FakeProvider } from './support/fake-providers.js';
import { startHttpOrigin } from './support/origins.js';
import { freePort, startRedisServer } from './support/redis-server.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

// 92 bytes: an input estimate of 23 tokens; with its bound of 50, each call reserves 73.
const CHAT = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 });
const HOURLY_LIMIT = 250;
const BUILDER_TOKEN = `builder-${randomBytes(12).toString('hex')}`;
const FLOODER_TOKEN = `flooder-${randomBytes(12).toString('hex')}`;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function config(caFile: string, redisUrl: string): string {
  return `${ALLOW_LOOPBACK}
  ca_file: ${caFile}
agents:
  - { name: builder, mode: strict, token_sha256: ["${sha256(BUILDER_TOKEN)}"] }
  - { name: flooder, token_sha256: ["${sha256(FLOODER_TOKEN)}"], limits: { requests_per_second: 0.001, burst: 2 } }
inference:
  hosts: [localhost]
  budgets:
    - { agent: anonymous, hourly: ${HOURLY_LIMIT} }
state:
  backend: redis
  redis: { url: "${redisUrl}", key_prefix: "fleet-test:", command_timeout_ms: 2000 }
`;
}

function chat(sluice: RunningSluice, provider: FakeProvider): Promise<CurlResult> {
  return curl(['-x', sluice.proxyUrl, '--cacert', join(sluice.stateDir, 'ca.pem'), '-H', 'content-type: application/json', '-d', CHAT, `https://localhost:${provider.port}/v1/chat/completions`]);
}

async function inferenceRecords(sluice: RunningSluice): Promise<Record<string, unknown>[]> {
  return (await sluice.auditRecords()).filter((record) => record.kind === 'inference');
}

async function hourly(sluice: RunningSluice): Promise<{ used: number; reserved: number }> {
  const report = (await sluice.sluice.budgetReport()).budgets.find((entry) => entry.subject === 'agent:anonymous');
  assert.ok(report !== undefined, 'the anonymous budget is reported');
  return { used: report.windows.hourly.used, reserved: report.windows.hourly.reserved };
}

function approvalIds(sluice: RunningSluice): string[] {
  return (sluice.sluice.policy.current.approvals?.all ?? []).map((approval) => approval.id);
}

describe('a fleet of two replicas sharing Redis', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const provider = keep(await startFakeProvider(ca));
    const origin = keep(await startHttpOrigin());
    const redis = keep(await startRedisServer());
    const first = keep(await startSluice({ config: config(ca.caFile, redis.url) }));
    const second = keep(await startSluice({ config: config(ca.caFile, redis.url) }));
    return { provider, origin, redis, first, second };
  });

  test('two replicas racing on one budget never reserve or settle beyond it: the last fitting call is clamped, the rest refused', async () => {
    const { provider, first, second } = fixture();
    let release = (): void => undefined;
    provider.behaviour.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const upstreamBefore = provider.requests.length;
    let outcomes: CurlResult[];
    try {
      // Three calls of 73 fit the 250; a fourth only with its bound lowered to 8 (23 + 8 = the 31
      // left); the other four not at all. All eight are in flight, through both replicas, before any settles.
      const calls = Array.from({ length: 8 }, (_, index) => chat(index % 2 === 0 ? first : second, provider));
      const refusals = async (): Promise<number> => (await inferenceRecords(first)).length + (await inferenceRecords(second)).length;
      await until(async () => provider.requests.length === upstreamBefore + 4 && (await refusals()) === 4, 'four calls upstream, four refused', 60_000);
      const inFlight = await hourly(first);
      assert.equal(inFlight.reserved, HOURLY_LIMIT, 'the reservations in flight fill the budget exactly, never more');
      assert.deepEqual(await hourly(second), inFlight, 'both replicas see the one shared budget');
      const bounds = provider.bodies.slice(-4).map((body) => Number(body.max_completion_tokens)).sort((a, b) => a - b);
      assert.deepEqual(bounds, [8, 50, 50, 50]);
      release();
      outcomes = await Promise.all(calls);
    } finally {
      provider.behaviour.hold = undefined;
    }
    assert.equal(outcomes.filter((outcome) => outcome.status === 200).length, 4);
    const refused = outcomes.filter((outcome) => outcome.status === 429);
    assert.equal(refused.length, 4);
    for (const outcome of refused) assert.equal((JSON.parse(outcome.body) as { error: { code: string } }).error.code, 'budget_exceeded');
    // Each call used 11 in and 5 out (the fake provider's usage): settled, never beyond the limit.
    await until(async () => (await hourly(first)).used === 4 * 16 && (await hourly(first)).reserved === 0, 'four calls settled in Redis');
    assert.deepEqual(await hourly(second), { used: 64, reserved: 0 });
  });

  test('an approval granted on one replica is honoured by the other within a second, and its revocation too', async () => {
    const { origin, first, second } = fixture();
    const url = `http://127.0.0.1:${origin.port}/approved`;
    const through = (sluice: RunningSluice): Promise<CurlResult> => curl(['-x', sluice.proxyUrl, '-U', `builder:${BUILDER_TOKEN}`, url]);
    assert.equal((await through(second)).status, 403, 'Strict mode: no rule, no approval');
    const approver = await makeAdminToken(first, 'fleet-approver', 'approver');
    const granted = await adminApi(first, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', port: origin.port, ttl_ms: 600_000, reason: 'fleet test' });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    const id = (granted.body.approval as { id: string }).id;
    await until(() => approvalIds(second).includes(id), 'the other replica holds the approval', 1_000);
    assert.equal((await through(second)).status, 200);

    assert.equal((await adminApi(first, 'DELETE', `/v1/approvals/${id}`, approver)).status, 200);
    await until(() => !approvalIds(second).includes(id), 'the other replica dropped the approval', 1_000);
    assert.equal((await through(second)).status, 403);
    const ended = (await second.auditRecords()).find((record) => record.kind === 'approval' && record.action === 'revoke' && record.id === id);
    assert.equal(ended?.revoked_by, 'another replica', 'the replica that did not revoke records that it ended the approval');
  });

  test('an access request is one for the fleet: asked through both replicas it is counted twice, and denied on one it is denied on both', async () => {
    const { first, second } = fixture();
    const ask = (sluice: RunningSluice): Promise<CurlResult> => curl(['-x', sluice.proxyUrl, '-U', `builder:${BUILDER_TOKEN}`, 'http://asked.fleet.test/']);
    assert.equal((await ask(first)).status, 403);
    assert.equal((await ask(second)).status, 403);
    const viewer = await makeAdminToken(first, 'fleet-viewer', 'viewer');
    const denier = await makeAdminToken(second, 'fleet-denier', 'approver');
    type Listed = { id: string; host: string; count: number; status: string };
    const listed = async (sluice: RunningSluice, token: string): Promise<Listed[]> =>
      ((await adminApi(sluice, 'GET', '/v1/requests?agent=builder', token)).body.requests as Listed[]).filter((request) => request.host === 'asked.fleet.test');
    await until(async () => {
      const [one, other] = [await listed(first, viewer), await listed(second, denier)];
      return one.length === 1 && one[0]?.count === 2 && other.length === 1 && other[0]?.id === one[0].id && other[0].count === 2;
    }, 'both replicas list the one request with both refusals counted');
    const [request] = await listed(second, denier);
    assert.equal((await adminApi(second, 'POST', `/v1/requests/${request?.id ?? ''}/deny`, denier)).status, 200);
    await until(async () => (await listed(first, viewer))[0]?.status === 'denied', 'the other replica sees the denial');
  });

  test("an agent's request rate is shared: the fleet admits its burst once, not once per replica", async () => {
    const { origin, first, second } = fixture();
    const url = `http://127.0.0.1:${origin.port}/flood`;
    const statuses: number[] = [];
    for (const sluice of [first, second, first, second]) statuses.push((await curl(['-x', sluice.proxyUrl, '-U', `flooder:${FLOODER_TOKEN}`, url])).status);
    assert.deepEqual(statuses, [200, 200, 429, 429]);
  });

  test('with Redis down, inference fails closed with BUDGET_STORE_UNREACHABLE, audited, approvals freeze, rates are limited per replica; all resumes once Redis is back', async () => {
    const { provider, origin, redis, first } = fixture();
    const up = async (): Promise<string | undefined> => /^sluice_shared_state_up (\d)$/m.exec(await (await fetch(`${first.adminUrl}/metrics`)).text())?.[1];
    assert.equal(await up(), '1');
    await redis.stop();
    await until(() => first.sluice.budgetReport().then((view) => view.store_failure !== null), 'the replica noticed Redis is gone');
    assert.equal(await up(), '0', 'sluice_shared_state_up says so (SluiceSharedStateDown pages on it)');
    const refused = await chat(first, provider);
    assert.equal(refused.status, 503);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'budget_store_unreachable');
    await until(async () => (await inferenceRecords(first)).some((record) => record.outcome === 'store_unreachable'), 'the refusal is audited');

    // Approvals freeze: a grant no other replica could see is not made.
    const approver = await makeAdminToken(first, 'outage-approver', 'approver');
    const grant = await adminApi(first, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', port: origin.port, ttl_ms: 600_000, reason: 'during the outage' });
    assert.equal(grant.status, 503);
    assert.equal((grant.body.error as { code: string }).code, 'SHARED_STATE_UNREACHABLE');
    assert.equal((await curl(['-x', first.proxyUrl, '-U', `builder:${BUILDER_TOKEN}`, `http://127.0.0.1:${origin.port}/`])).status, 403, 'nothing was granted');
    // Rate limits fall back to this replica's own bucket (burst 2, unused so far), never to none.
    const flood: number[] = [];
    for (let index = 0; index < 3; index += 1) flood.push((await curl(['-x', first.proxyUrl, '-U', `flooder:${FLOODER_TOKEN}`, `http://127.0.0.1:${origin.port}/flood`])).status);
    assert.deepEqual(flood, [200, 200, 429]);

    await redis.start();
    await until(async () => (await chat(first, provider)).status === 200, 'inference resumes once Redis answers', 30_000);
    assert.equal(await up(), '1');
  });
});

describe('the state section', () => {
  test('redis needs its connection, and credentials never go in the URL', () => {
    assert.match(configIssues('state:\n  backend: redis\n'), /^sluice\.yaml:2:\d+: state\.redis: backend: redis needs a redis section/m);
    assert.match(configIssues('state:\n  backend: redis\n  redis:\n    url: "redis://admin:hunter2@10.0.0.5:6379"\n'), /^sluice\.yaml:4:\d+: state\.redis\.url: expected redis:\/\/host:port\[\/db\] or rediss:\/\/host:port\[\/db\], without credentials/m);
    assert.match(configIssues('state:\n  backend: shared\n'), /^sluice\.yaml:2:\d+: state\.backend:/m);
  });

  test('a replica that cannot reach Redis at start refuses to start, naming state.redis.url', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    await assert.rejects(startSluice({ config: `state:\n  backend: redis\n  redis: { url: "${url}", connect_timeout_ms: 500 }\n` }), (error: Error) => {
      assert.match(error.message, new RegExp(`^state\\.redis\\.url: cannot reach ${url.replace(/[.:/]/g, '\\$&')}`));
      return true;
    });
  });

  test('a Redis with a password: read from the environment, sent to Redis, never logged', async (t) => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const redis = await startRedisServer({ password });
    t.after(() => redis.close());
    const sluice = await startSluice({ config: `state:\n  backend: redis\n  redis: { url: "${redis.url}", password: { env: FLEET_REDIS_PASSWORD } }\n`, env: { FLEET_REDIS_PASSWORD: password } });
    t.after(() => sluice.close());
    assert.equal((await sluice.sluice.budgetReport()).store_failure, null, 'connected and authenticated');
    assert.ok(!JSON.stringify(sluice.logs).includes(password), 'the password is in no log line');
    await assert.rejects(startSluice({ config: `state:\n  backend: redis\n  redis: { url: "${redis.url}", password: { env: FLEET_REDIS_PASSWORD } }\n`, env: { FLEET_REDIS_PASSWORD: 'wrong' } }), /state\.redis\.url: cannot reach/);
  });
});

describe('the Redis budget accounts, as two replicas hold them', () => {
  const fixture = suiteFixture(async (keep) => {
    const redis = keep(await startRedisServer());
    const clients = [keep(new Redis(redis.url), async (client) => client.quit()), keep(new Redis(redis.url), async (client) => client.quit())];
    let now = Date.UTC(2026, 11, 2, 10, 0, 0);
    const clock = { now: () => now, advance: (ms: number) => (now += ms) };
    const log = createLogger('silent');
    const limits = new BudgetLimits([{ agent: 'racer', hourly: 1_000 }, { agent: 'orphan', hourly: 300 }]);
    const replicas = clients.map((client) => new RedisBudgets({ redis: client, keyPrefix: 'accounts-test:', limits, agents: ['racer', 'orphan'], leaseMs: 60_000, now: clock.now, log }));
    return { replicas, clock };
  });
  const request = (name: string, outputBound: number): PlanRequest => ({ agent: { name, groups: [], mode: 'learn', via: 'token' }, inputEstimate: 10, outputBound, choices: 1, defaultBound: 100 });

  test('forty reservations racing from two replicas never hold more than the limit, and settle back to zero', async () => {
    const { replicas } = fixture();
    const plans = await Promise.all(Array.from({ length: 40 }, (_, index) => (replicas[index % 2] as RedisBudgets).plan(request('racer', 90))));
    const held = plans.flatMap((plan) => (plan.kind === 'go' ? [plan.reservation] : []));
    const total = held.reduce((sum, reservation) => sum + reservation.tokens, 0);
    assert.equal(total, 1_000, 'the budget is reserved exactly, the last fitting call clamped');
    assert.equal(plans.filter((plan) => plan.kind === 'over').length, 40 - held.length);
    const standing = async (): Promise<{ used: number; reserved: number } | undefined> => {
      const hourly = (await (replicas[1] as RedisBudgets).report()).find((report) => report.subject === 'agent:racer')?.windows.hourly;
      return hourly === undefined ? undefined : { used: hourly.used, reserved: hourly.reserved };
    };
    assert.deepEqual(await standing(), { used: 0, reserved: 1_000 });
    await Promise.all(held.map((reservation, index) => (replicas[index % 2] as RedisBudgets).settle(reservation, { at: Date.UTC(2026, 11, 2, 10, 0, 0), request_id: `r${index}`, agent: 'racer', subjects: reservation.subjects, model: 'm', input: 10, output: 5, estimated: false })));
    assert.deepEqual(await standing(), { used: 15 * held.length, reserved: 0 });
  });

  test('a replica that dies mid-call holds its reservation only until the lease ends', async () => {
    const { replicas, clock } = fixture();
    const [dying, living] = replicas as [RedisBudgets, RedisBudgets];
    assert.equal((await dying.plan(request('orphan', 290))).kind, 'go');
    assert.equal((await living.plan(request('orphan', 50))).kind, 'over', 'the dead call still holds the budget');
    clock.advance(60_001);
    const after = await living.plan(request('orphan', 50));
    assert.equal(after.kind, 'go', 'its lease ended');
    assert.equal(after.kind === 'go' ? after.reservation.tokens : 0, 60);
  });
});
