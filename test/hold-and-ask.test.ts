// Hold-and-ask (agents[].on_unknown: hold): a Strict-mode request no rule decides waits while its
// access request is pending, proceeds the moment a reload allows it, and times out with its own code.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Agent } from '../src/agent.js';
import { destinationOf } from '../src/destination.js';
import { HeldRequests, type HoldOutcome } from '../src/policy/hold.js';
import { LivePolicy } from '../src/policy/live-policy.js';
import { compileRules, parseRuleText } from '../src/policy/rules.js';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { curl } from './support/curl.js';
import { ManualTimer } from './support/manual-timer.js';
import { startHttpOrigin } from './support/origins.js';
import { freePort, spawnSluice } from './support/sluice-process.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const sha = (token: string): string => createHash('sha256').update(token).digest('hex');
const AGENTS = `agents:
  - { name: patient, token_sha256: ["${sha('patient-token')}"], on_unknown: hold, hold_timeout_ms: 60000 }
  - { name: hasty, token_sha256: ["${sha('hasty-token')}"], on_unknown: hold, hold_timeout_ms: 100 }
  - { name: plain, token_sha256: ["${sha('plain-token')}"] }
`;
const as = (proxy: string, token: string): string[] => ['-x', proxy, '--proxy-header', `Proxy-Authorization: Bearer ${token}`];

describe('held requests, by themselves', () => {
  const rules = (text: string) => compileRules([parseRuleText('rules.yaml', text)]);
  const agent = (name: string): Agent => ({ name, groups: [], mode: 'strict', via: 'token' });
  const holdingAgent = (name: string) => ({ name, groups: [], token_sha256: [], uids: [], cidrs: [], on_unknown: 'hold' as const, hold_timeout_ms: 5000 });
  const ask = (name: string, host: string) => ({ agent: agent(name), destination: destinationOf(host, 443), now: Date.now() });

  test('one agent cannot fill the hold: past max_held_per_agent its requests are refused at once, others still wait', async () => {
    const live = new LivePolicy(rules('rules: []\n'), true, false);
    const timer = new ManualTimer();
    const holds = new HeldRequests([holdingAgent('greedy'), holdingAgent('modest')], live, { maxHeld: 10, maxHeldPerAgent: 2, schedule: timer.schedule });
    const outcomes: HoldOutcome[] = [];
    const held = [ask('greedy', 'a.example.test'), ask('greedy', 'b.example.test'), ask('modest', 'a.example.test')].map((args) => holds.wait(args).then((outcome) => outcomes.push(outcome)));
    assert.equal((await holds.wait(ask('greedy', 'c.example.test'))).decision.reason, 'hold_full');
    assert.equal(holds.size, 3);
    live.replaceLocalRules(rules('rules:\n  - { id: a-only, action: allow, hosts: [a.example.test] }\n'));
    await until(() => outcomes.length === 2, 'the two requests for a.example.test to be released');
    assert.deepEqual(outcomes.map((outcome) => [outcome.decision.reason, outcome.decision.ruleId, outcome.policy === live.current]), [
      ['rule_allow', 'a-only', true],
      ['rule_allow', 'a-only', true],
    ]);
    assert.equal(timer.fire(), 1, 'released requests had their timers cancelled');
    await Promise.all(held);
    assert.deepEqual(outcomes.map((outcome) => outcome.decision.reason), ['rule_allow', 'rule_allow', 'hold_timeout']);
    assert.equal(holds.size, 0);
    const again = holds.wait(ask('greedy', 'd.example.test'));
    assert.equal(holds.size, 1, 'ended holds gave the agent its places back');
    holds.close();
    assert.equal((await again).decision.reason, 'no_matching_rule', 'stopping answers held requests as the policy decides them');
  });
});

describe('holding a request while a human is asked', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sluice = keep(await startSluice({ config: `${ALLOW_LOOPBACK}\nmode: strict\napprovals: { max_held: 1 }\n${AGENTS}` }));
    return { origin, sluice };
  });

  test('a held CONNECT proceeds, on the new policy, once a reload allows its host', async () => {
    const { origin, sluice } = fixture();
    const waiting = curl([...as(sluice.proxyUrl, 'patient-token'), '-p', `http://127.0.0.1:${origin.port}/held-tunnel`]);
    await until(() => sluice.sluice.heldRequests === 1, 'the tunnel to be held');
    assert.deepEqual(sluice.sluice.accessRequests.list().map(({ agent, port, status }) => [agent, port, status]), [['patient', origin.port, 'pending']]);
    await writeFile(join(sluice.dir, 'rules', 'granted.yaml'), `rules:\n  - { id: granted, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], agents: [patient] }\n`);
    await sluice.sluice.reload();
    const result = await waiting;
    assert.equal(result.status, 200, result.headers);
    assert.match(result.headers, /Sluice-Decision: allow; reason=rule_allow; rule=granted/);
    assert.equal(sluice.sluice.heldRequests, 0);
    assert.deepEqual(sluice.sluice.accessRequests.list({ status: 'pending' }), [], 'the allowed request was cleared');
    const decisions = (await sluice.auditRecords()).filter((record) => record.kind === 'decision' && record.agent === 'patient');
    assert.deepEqual(decisions.map((record) => [record['verdict'], record['rule']]), [['allow', 'granted']], 'one decision record, the final one');
  });

  test('a held request no rule allows in time is refused with HOLD_TIMEOUT', async () => {
    const { origin, sluice } = fixture();
    const result = await curl([...as(sluice.proxyUrl, 'hasty-token'), `http://127.0.0.1:${origin.port + 1}/never-allowed`]);
    assert.equal(result.status, 403);
    assert.match(result.headers, /Sluice-Decision: deny; reason=hold_timeout;/);
    assert.match(result.body, /"code":"HOLD_TIMEOUT"/);
    const decision = (await sluice.auditRecords()).filter((record) => record.kind === 'decision' && record.agent === 'hasty').at(-1);
    assert.equal(decision?.['reason'], 'hold_timeout');
  });

  test('past approvals.max_held a request is refused at once; a human denial ends the held one', async () => {
    const { origin, sluice } = fixture();
    const target = `http://localhost:${origin.port}/first`;
    const first = curl([...as(sluice.proxyUrl, 'patient-token'), target]);
    await until(() => sluice.sluice.heldRequests === 1, 'the first request to be held');
    const second = await curl([...as(sluice.proxyUrl, 'patient-token'), `http://localhost:${origin.port + 2}/second`]);
    assert.equal(second.status, 403);
    assert.match(second.headers, /reason=hold_capacity;/);
    const request = sluice.sluice.accessRequests.list().find((entry) => entry.host === 'localhost' && entry.port === origin.port);
    assert.ok(request !== undefined);
    sluice.sluice.accessRequests.deny(request.id, 'bob');
    const ended = await first;
    assert.equal(ended.status, 403);
    assert.match(ended.headers, /reason=no_matching_rule;/);
    const again = await curl([...as(sluice.proxyUrl, 'patient-token'), target]);
    assert.match(again.headers, /reason=no_matching_rule;/, 'a denied request is refused at once, not held again');
    assert.equal(sluice.sluice.heldRequests, 0);
  });

  test('a plain-HTTP client that hangs up while held gives its place back at once', async () => {
    const { origin, sluice } = fixture();
    const socket = connect(sluice.proxyPort, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET http://127.0.0.1:${origin.port + 4}/gave-up HTTP/1.1\r\nHost: 127.0.0.1:${origin.port + 4}\r\nProxy-Authorization: Bearer patient-token\r\n\r\n`);
    await until(() => sluice.sluice.heldRequests === 1, 'the request to be held');
    socket.destroy();
    await until(() => sluice.sluice.heldRequests === 0, 'the hold to end with the client');
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'decision' && record.path === '/gave-up' && record['reason'] === 'no_matching_rule'), 'the decision record');
  });

  test('an approval granted through the admin API while curl waits lets the held request through', async (t) => {
    const { sluice } = fixture();
    const second = await startHttpOrigin();
    t.after(() => second.close());
    const waiting = curl([...as(sluice.proxyUrl, 'patient-token'), `http://127.0.0.1:${second.port}/approved-while-held`]);
    await until(() => sluice.sluice.heldRequests === 1, 'the request to be held');
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const granted = await adminApi(sluice, 'POST', '/v1/approvals', approver, { agent: 'patient', host: '127.0.0.1', port: second.port, ttl_ms: 3_600_000, reason: 'asked for it' });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    const result = await waiting;
    assert.equal(result.status, 200, result.headers);
    assert.match(result.headers, /reason=approval_allow/);
    assert.equal(JSON.parse(result.body).url, '/approved-while-held');
    assert.deepEqual(sluice.sluice.accessRequests.list({ agent: 'patient', status: 'pending' }).filter((request) => request.port === second.port), [], 'the approval cleared the request');
  });

  test('an agent without on_unknown: hold is refused at once, as before', async () => {
    const { origin, sluice } = fixture();
    const result = await curl([...as(sluice.proxyUrl, 'plain-token'), `http://127.0.0.1:${origin.port + 3}/`]);
    assert.match(result.headers, /reason=no_matching_rule;/);
  });
});

test('sluice run: a held curl succeeds once SIGHUP reloads a rule file allowing its host', async (t) => {
  const origin = await startHttpOrigin();
  t.after(() => origin.close());
  const scratch = await startSluice();
  t.after(() => scratch.close());
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const config = join(scratch.dir, 'hold.yaml');
  await writeFile(config, `listen: { proxy: "127.0.0.1:${proxyPort}", admin: "127.0.0.1:${adminPort}" }\nstate_dir: hold-state\nrules: [rules]\nblocklists: blocklists.yaml\nmode: strict\n${ALLOW_LOOPBACK}\n${AGENTS}`);
  const child = spawnSluice(['run', '--config', config]);
  t.after(() => child.stop());
  await child.waitForLog('sluice started');
  const waiting = curl([...as(`http://127.0.0.1:${proxyPort}`, 'patient-token'), `http://127.0.0.1:${origin.port}/after-sighup`]);
  await child.waitForLog('request held until a rule or approval decides it');
  await writeFile(join(scratch.dir, 'rules', 'granted.yaml'), `rules:\n  - { id: granted-by-hup, action: allow, hosts: [127.0.0.1], ports: [${origin.port}] }\n`);
  child.child.kill('SIGHUP');
  const result = await waiting;
  assert.equal(result.status, 200, result.stderr);
  assert.equal(JSON.parse(result.body).url, '/after-sighup');
  assert.match(result.headers, /rule=granted-by-hup/);
  await child.stop();
  const audit = (await readFile(join(scratch.dir, 'hold-state', 'audit.jsonl'), 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    audit.filter((record) => record['kind'] === 'access_request').map((record) => record['event']),
    ['created', 'cleared'],
  );
});
