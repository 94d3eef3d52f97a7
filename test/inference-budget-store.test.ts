// Budgets over time and across restarts: UTC windows roll over on an injected clock, settled usage
// survives a restart, a line cut short by a crash is dropped, and a damaged journal is never reset:
// inference is refused (fail closed) and `sluice budget show` says where, until an operator acts.
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { SYSTEM_CLOCK } from '../src/clock.js';
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runSluice } from './support/cli.js';
import { curl, type CurlResult } from './support/curl.js';
import { startFakeProvider, type FakeProvider } from './support/fake-providers.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa, type TestCa } from './support/test-ca.js';
import { until } from './support/until.js';

// 92 bytes: an input estimate of 23 tokens.
const CHAT = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 });
const HOUR = 3_600_000;

function chat(sluice: RunningSluice, provider: FakeProvider): Promise<CurlResult> {
  return curl(['-x', sluice.proxyUrl, '--cacert', join(sluice.stateDir, 'ca.pem'), '-H', 'content-type: application/json', '-d', CHAT, `https://localhost:${provider.port}/v1/chat/completions`]);
}

function config(ca: TestCa): string {
  return `${ALLOW_LOOPBACK}\n  ca_file: ${ca.caFile}\ninference:\n  hosts: [localhost]\n  budgets:\n    - { agent: anonymous, hourly: 30, daily: 1000 }\n`;
}

describe('inference budgets over time and restarts', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const provider = keep(await startFakeProvider(ca));
    return { ca, provider };
  });

  test('an hourly budget refuses with retry-after until the UTC hour rolls over; restarts keep the counts', async (t) => {
    const { ca, provider } = fixture();
    // The 1st of this month, so `sluice budget show` (on the real clock) sees the same month.
    const today = new Date();
    let now = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1, 10, 59, 0);
    const first = await startSluice({ config: config(ca), clock: { now: () => now, after: SYSTEM_CLOCK.after } });
    t.after(() => first.close());
    const ok = await chat(first, provider);
    assert.equal(ok.status, 200, ok.body);
    assert.ok(Number((provider.bodies.at(-1) as { max_completion_tokens: number }).max_completion_tokens) <= 7, 'the bound was lowered to what the hour had left');
    await until(async () => (await first.sluice.budgetReport()).budgets[0]?.windows.hourly.used === 16, 'the call settled (11 in, 5 out)');
    const scraped = await (await fetch(`${first.adminUrl}/metrics`)).text();
    assert.match(scraped, /^sluice_inference_budget_used_ratio\{agent="anonymous",window="hourly"\} 0\.5333/m, 'the gauge is read from the accounts when scraped: 16 of 30');
    const refused = await chat(first, provider);
    assert.equal(refused.status, 429);
    assert.match(refused.headers, /^retry-after: 60\r?$/m, 'seconds to 11:00 UTC');
    assert.match(refused.headers, /^x-should-retry: false\r?$/m);
    assert.deepEqual((JSON.parse(refused.body) as { error: { code: string; type: string } }).error.code, 'budget_exceeded');

    now += HOUR;
    assert.equal((await chat(first, provider)).status, 200, 'a new hour, a new budget');
    await until(async () => (await first.sluice.budgetReport()).budgets[0]?.windows.daily.used === 32, 'second call settled');
    await first.stop();

    const second = await startSluice({ config: config(ca), dir: first.dir, clock: { now: () => now, after: SYSTEM_CLOCK.after } });
    t.after(() => second.stop());
    const windows = (await second.sluice.budgetReport()).budgets[0]?.windows;
    assert.deepEqual([windows?.hourly.used, windows?.daily.used], [16, 32], 'settled usage survived the restart');
    const viewer = await makeAdminToken(second, 'budget-viewer', 'viewer');
    const served = await adminApi(second, 'GET', '/v1/budgets', viewer);
    assert.equal(served.status, 200);
    assert.deepEqual(served.body, JSON.parse(JSON.stringify(await second.sluice.budgetReport())), 'GET /v1/budgets serves the report metering holds');
    assert.equal((await adminApi(second, 'GET', '/v1/budgets', undefined)).status, 401);
    const shown = await runSluice(['budget', 'show', '--config', first.configFile, '--json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { budgets: { windows: { monthly: { used: number } } }[] }).budgets[0]?.windows.monthly.used, 32);
  });

  test('a line cut short by a crash is dropped; a damaged line refuses inference until an operator acts', async (t) => {
    const { ca, provider } = fixture();
    const sluice = await startSluice({ config: config(ca) });
    t.after(() => sluice.close());
    assert.equal((await chat(sluice, provider)).status, 200);
    const journal = join(sluice.stateDir, 'inference-usage.jsonl');
    await until(async () => (await readFile(journal, 'utf8').catch(() => '')).endsWith('\n'), 'the settled line');
    await sluice.stop();

    await appendFile(journal, '{"at":1,"request_id":"torn","agent":"anon');
    const afterCrash = await startSluice({ config: config(ca), dir: sluice.dir });
    assert.equal((await afterCrash.sluice.budgetReport()).store_failure, null);
    assert.equal((await afterCrash.sluice.budgetReport()).budgets[0]?.windows.daily.used, 16);
    assert.ok((await readFile(journal, 'utf8')).endsWith('}\n'), 'the torn tail was cut');
    await afterCrash.stop();

    const damaged = (await readFile(journal, 'utf8')).replace('"input":11', '"input":1');
    await writeFile(journal, damaged);
    const failed = await startSluice({ config: config(ca), dir: sluice.dir });
    t.after(() => failed.stop());
    assert.match((await failed.sluice.budgetReport()).store_failure ?? '', /inference-usage\.jsonl:1: checksum mismatch/);
    const upstreamBefore = provider.requests.length;
    const refused = await chat(failed, provider);
    assert.equal(refused.status, 503);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'budget_store_unusable');
    assert.equal(provider.requests.length, upstreamBefore);
    assert.equal(await readFile(journal, 'utf8'), damaged, 'never reset behind the operator');
    const shown = await runSluice(['budget', 'show', '--config', sluice.configFile]);
    assert.equal(shown.code, 1);
    assert.match(shown.stderr, /inference-usage\.jsonl:1: checksum mismatch; move the file aside or restore it/);
  });
});
