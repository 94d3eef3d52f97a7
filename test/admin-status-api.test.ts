// What the admin page reads, as API calls: /v1/whoami names the token, /v1/status reports modes,
// rules and blocklist ages (on the process clock, to the second), /v1/learned/proposal the rules.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { curl } from './support/curl.js';
import { startFeedServer } from './support/feed-server.js';
import { ManualClock } from './support/manual-clock.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const sha = (token: string): string => createHash('sha256').update(token).digest('hex');
const LEARNER_TOKEN = 'learner-agent-token';

interface Status {
  mode: string;
  agents: { name: string; mode: string }[];
  rules: { count: number; bundle_version: number | null };
  blocklists: { source: string; entries: number; fetched_at: string | null; age_seconds: number | null; last_outcome: string | null }[];
}

describe('the admin page\'s data routes', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const feed = keep(await startFeedServer());
    feed.set('/list', { body: '*.malware.test\nphish.test\n' });
    const clock = new ManualClock();
    const sluice = keep(
      await startSluice({
        clock,
        config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: learner, token_sha256: ["${sha(LEARNER_TOKEN)}"], mode: learn }\n  - { name: builder, token_sha256: ["${sha('builder-token')}"] }\n`,
        rules: { 'team.yaml': 'rules:\n  - { id: docs, action: allow, hosts: [docs.example.test] }\n  - { id: pypi, action: allow, hosts: [pypi.org] }\n' },
        blocklists: `sources:\n  - name: test-feed\n    url: ${feed.url('/list')}\n    format: wildcard\n`,
      }),
    );
    const viewer = await makeAdminToken(sluice, 'victor', 'viewer');
    const admin = await makeAdminToken(sluice, 'ada', 'admin');
    return { origin, sluice, clock, viewer, admin };
  });

  test('whoami names the token and its role; without a token it is 401', async () => {
    const { sluice, viewer, admin } = fixture();
    assert.deepEqual((await adminApi(sluice, 'GET', '/v1/whoami', viewer)).body, { name: 'victor', role: 'viewer' });
    assert.deepEqual((await adminApi(sluice, 'GET', '/v1/whoami', admin)).body, { name: 'ada', role: 'admin' });
    assert.equal((await adminApi(sluice, 'GET', '/v1/whoami', undefined)).status, 401);
  });

  test('status gives each agent\'s mode in force, the rules, and blocklist ages in whole seconds', async () => {
    const { sluice, clock, viewer, admin } = fixture();
    // The first download is due at once on the process clock; it runs when the clock is moved.
    clock.advance(0);
    const loaded = async (): Promise<Status> => (await adminApi(sluice, 'GET', '/v1/status', viewer)).body as unknown as Status;
    await until(async () => (await loaded()).blocklists[0]?.last_outcome === 'updated', 'the feed to be downloaded');
    clock.advance(90_500);
    const status = await loaded();
    assert.equal(status.mode, 'strict');
    assert.deepEqual(status.rules, { count: 2, bundle_version: null });
    assert.deepEqual(status.blocklists, [{ source: 'test-feed', entries: 2, fetched_at: new Date(clock.now() - 90_500).toISOString(), age_seconds: 90, last_outcome: 'updated' }]);
    assert.equal((await adminApi(sluice, 'PUT', '/v1/agents/builder/mode', admin, { mode: 'learn' })).status, 200);
    assert.deepEqual((await loaded()).agents, [
      { name: 'anonymous', mode: 'strict' },
      { name: 'learner', mode: 'learn' },
      { name: 'builder', mode: 'learn' },
    ]);
  });

  test('the proposal is the rules file `sluice learn propose` would print for the learned hosts', async () => {
    const { origin, sluice, viewer } = fixture();
    const learned = await curl(['-x', sluice.proxyUrl, '-U', `learner:${LEARNER_TOKEN}`, `http://localhost:${origin.port}/learn-me`]);
    assert.equal(learned.status, 200, learned.headers);
    await until(async () => ((await adminApi(sluice, 'GET', '/v1/learned?agent=learner', viewer)).body['entries'] as unknown[]).length === 1, 'the host to be learned');
    const reply = await adminApi(sluice, 'GET', '/v1/learned/proposal?agent=learner', viewer);
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body['left_out'], []);
    const proposal = parse(reply.body['yaml'] as string) as { rules: { hosts: string[]; ports?: number[] }[] };
    assert.deepEqual(proposal.rules.map((rule) => [rule.hosts, rule.ports]), [[['localhost'], [origin.port]]]);
    assert.equal((await adminApi(sluice, 'GET', '/v1/learned/proposal?since=yesterday', viewer)).status, 400, 'an unreadable since is refused');
  });
});
