// Explain, learned and modes through the admin API of a real Sluice: explain gives the same
// verdict and rule curl meets through the proxy; an admin switches an agent to Learn (audited,
// kept across a restart until the config changes it); what Learn recorded is listed and cleared.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { curl } from './support/curl.js';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

const AGENT_TOKEN = `agent-${randomBytes(12).toString('hex')}`;
const TOKEN_HASH = createHash('sha256').update(AGENT_TOKEN).digest('hex');

function configFor(builderMode: string): string {
  return `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: builder, mode: ${builderMode}, groups: [ci], token_sha256: ["${TOKEN_HASH}"] }\n`;
}

function rules(origin: Origin): Record<string, string> {
  return {
    'team.yaml': `rules:
  - { id: origin, action: allow, hosts: ["127.0.0.1"], ports: [${origin.port}], groups: [ci] }
  - { id: no-denied, action: deny, hosts: [denied.test] }
  - { id: metadata-by-mistake, action: allow, hosts: ["169.254.169.254"], ports: [80] }
`,
  };
}

interface Explained {
  readonly verdict: string;
  readonly reason: string;
  readonly rule: string | null;
  readonly rule_file: string | null;
  readonly agent: { readonly mode: string };
  readonly forbidden_class: string | null;
  readonly why: string;
}

async function explain(sluice: RunningSluice, token: string, query: Record<string, string>): Promise<Explained> {
  const reply = await adminApi(sluice, 'GET', `/v1/explain?${new URLSearchParams(query).toString()}`, token);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body as unknown as Explained;
}

describe('explain, learned and agent modes', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const other = keep(await startHttpOrigin());
    const sluice = keep(await startSluice({ config: configFor('strict'), rules: rules(origin) }));
    const viewer = await makeAdminToken(sluice, 'victor', 'viewer');
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const admin = await makeAdminToken(sluice, 'root', 'admin');
    return { origin, other, sluice, viewer, approver, admin };
  });

  test('explain gives the verdict, reason and rule the proxy really applies', async () => {
    const { sluice, origin, viewer } = fixture();
    const cases = [
      { host: '127.0.0.1', port: origin.port, reason: 'rule_allow', rule: 'origin' },
      { host: 'denied.test', port: 80, reason: 'rule_deny', rule: 'no-denied' },
      { host: 'unknown.test', port: 80, reason: 'no_matching_rule', rule: null },
      { host: '169.254.169.254', port: 80, reason: 'destination_forbidden', rule: null },
    ];
    for (const expected of cases) {
      const explained = await explain(sluice, viewer, { agent: 'builder', host: expected.host, port: String(expected.port), method: 'GET', path: '/' });
      assert.equal(explained.reason, expected.reason, `${expected.host}: ${explained.why}`);
      assert.equal(explained.rule, expected.rule);
      const real = await curl(['-x', sluice.proxyUrl, '-U', `builder:${AGENT_TOKEN}`, `http://${expected.host}:${expected.port}/`]);
      const header = /sluice-decision: (\w+); reason=(\w+); rule=([^;]+);/i.exec(real.headers);
      assert.ok(header !== null, real.headers);
      // A refusal's reason is its error code in lower case, which for these is the deny reason itself.
      assert.equal(header[1], explained.verdict);
      assert.equal(header[2], explained.reason);
      assert.equal(header[3], explained.rule ?? '-');
    }
    const allowed = await explain(sluice, viewer, { agent: 'builder', host: '127.0.0.1', port: String(origin.port) });
    assert.match(allowed.rule_file ?? '', /team\.yaml$/);
    assert.equal(allowed.forbidden_class, null);
  });

  test('explain refuses an unknown agent and half a request, naming the field', async () => {
    const { sluice, viewer } = fixture();
    const unknown = await adminApi(sluice, 'GET', '/v1/explain?agent=nobody&host=a.test', viewer);
    assert.equal(unknown.status, 400);
    assert.match((unknown.body['error'] as { message: string }).message, /agent: no agent named "nobody"/);
    const half = await adminApi(sluice, 'GET', '/v1/explain?agent=builder&host=a.test&method=GET', viewer);
    assert.match((half.body['error'] as { message: string }).message, /method and path go together/);
  });

  test('an admin switches an agent to Learn (audited); what it then reaches is listed, and cleared by an admin only', async () => {
    const { sluice, other, viewer, approver, admin } = fixture();
    assert.equal((await adminApi(sluice, 'PUT', '/v1/agents/builder/mode', approver, { mode: 'learn' })).status, 403);
    assert.equal((await adminApi(sluice, 'PUT', '/v1/agents/nobody/mode', admin, { mode: 'learn' })).status, 404);
    assert.equal((await adminApi(sluice, 'PUT', '/v1/agents/builder/mode', admin, { mode: 'sometimes' })).status, 400);
    const url = `http://127.0.0.1:${other.port}/learned`;
    assert.equal((await curl(['-x', sluice.proxyUrl, '-U', `builder:${AGENT_TOKEN}`, url])).status, 403);
    const switched = await adminApi(sluice, 'PUT', '/v1/agents/builder/mode', admin, { mode: 'learn' });
    assert.deepEqual(switched.body, { agent: 'builder', mode: 'learn' });
    assert.equal((await explain(sluice, viewer, { agent: 'builder', host: '127.0.0.1', port: String(other.port) })).reason, 'learn_unmatched');
    const learned = await curl(['-x', sluice.proxyUrl, '-U', `builder:${AGENT_TOKEN}`, url]);
    assert.equal(learned.status, 200);
    assert.match(learned.headers, /reason=learn_unmatched/);
    const listed = await adminApi(sluice, 'GET', '/v1/learned?agent=builder', viewer);
    assert.deepEqual((listed.body['entries'] as { host: string; port: number; count: number }[]).map(({ host, port, count }) => ({ host, port, count })), [{ host: '127.0.0.1', port: other.port, count: 1 }]);
    const future = await adminApi(sluice, 'GET', `/v1/learned?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, viewer);
    assert.deepEqual(future.body['entries'], []);
    assert.equal((await adminApi(sluice, 'DELETE', '/v1/learned?agent=builder', approver)).status, 403);
    assert.equal((await adminApi(sluice, 'DELETE', '/v1/learned', admin)).status, 400);
    const cleared = await adminApi(sluice, 'DELETE', '/v1/learned?agent=builder', admin);
    assert.deepEqual(cleared.body, { agent: 'builder', removed: 1 });
    assert.deepEqual((await adminApi(sluice, 'GET', '/v1/learned', viewer)).body['entries'], []);
    const records = await sluice.auditRecords();
    assert.deepEqual(
      records.filter((record) => record.kind === 'agent_mode').map(({ agent, mode, by }) => ({ agent, mode, by })),
      [{ agent: 'builder', mode: 'learn', by: 'root' }],
    );
    assert.deepEqual(
      records.filter((record) => record.kind === 'learned_cleared').map(({ agent, removed, by }) => ({ agent, removed, by })),
      [{ agent: 'builder', removed: 1, by: 'root' }],
    );
    assert.equal(records.filter((record) => record.kind === 'decision' && record['reason'] === 'learn_unmatched').at(-1)?.['mode'], 'learn');
  });
});

describe('a run-time mode across restarts', () => {
  test('is kept after a restart, and dropped once the config changes that agent\'s mode', async (t) => {
    const origin = await startHttpOrigin();
    t.after(() => origin.close());
    const first = await startSluice({ config: configFor('strict'), rules: rules(origin) });
    t.after(() => first.close());
    const admin = await makeAdminToken(first, 'root', 'admin');
    assert.equal((await adminApi(first, 'PUT', '/v1/agents/builder/mode', admin, { mode: 'learn' })).status, 200);
    await first.stop();
    const second = await startSluice({ dir: first.dir, config: configFor('strict'), rules: rules(origin) });
    assert.equal((await explain(second, admin, { agent: 'builder', host: 'unknown.test' })).agent.mode, 'learn');
    await second.stop();
    // The operator edits the config: builder is now declared Learn, then Strict again.
    const third = await startSluice({ dir: first.dir, config: configFor('learn'), rules: rules(origin) });
    await third.stop();
    assert.ok(third.logs.some((line) => line['msg'] === 'run-time mode of agent "builder" dropped: the config changed its mode since'));
    const fourth = await startSluice({ dir: first.dir, config: configFor('strict'), rules: rules(origin) });
    t.after(() => fourth.stop());
    assert.equal((await explain(fourth, admin, { agent: 'builder', host: 'unknown.test' })).agent.mode, 'strict');
  });
});
