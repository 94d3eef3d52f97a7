// A human answers agents' access requests through the admin API and the CLI: a held request
// proceeds when its request is approved (`sluice approve --request`) and fails at once when denied.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { freePort } from './support/sluice-process.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { until } from './support/until.js';

const AGENT_TOKEN = 'coder-token-for-requests';
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

interface Listed {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly status: string;
}

describe('access requests answered through the admin API', () => {
  test('approve --request lets the held request through; requests deny refuses it at once', async (t) => {
    const granted = await startHttpOrigin();
    t.after(() => granted.close());
    const refused = await startHttpOrigin();
    t.after(() => refused.close());
    const sluice = await startSluice({
      listen: { admin: `127.0.0.1:${await freePort()}` },
      config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: coder, token_sha256: ["${sha(AGENT_TOKEN)}"], on_unknown: hold, hold_timeout_ms: 60000 }\n`,
    });
    t.after(() => sluice.close());
    const viewer = await makeAdminToken(sluice, 'watcher', 'viewer');
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const config = ['--config', sluice.configFile];
    const as = (token: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', SLUICE_ADMIN_TOKEN: token });
    const through = (port: number) => curl(['-x', sluice.proxyUrl, '-U', `coder:${AGENT_TOKEN}`, `http://127.0.0.1:${port}/wanted`]);
    const pendingFor = async (port: number): Promise<Listed | undefined> => {
      const reply = await adminApi(sluice, 'GET', '/v1/requests?agent=coder&status=pending', viewer);
      assert.equal(reply.status, 200);
      return (reply.body['requests'] as Listed[]).find((request) => request.port === port);
    };

    const waiting = through(granted.port);
    await until(async () => (await pendingFor(granted.port)) !== undefined, 'the held request to be listed');
    const asked = await pendingFor(granted.port);
    const listed = await runSluice(['requests', 'list', '--agent', 'coder', ...config], { env: as(viewer) });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${asked?.id ?? '-'} +coder +127\\.0\\.0\\.1 +${granted.port} +\\d+ +\\S+ +pending$`, 'm'));
    assert.equal((await adminApi(sluice, 'POST', `/v1/requests/${asked?.id ?? ''}/deny`, viewer)).status, 403, 'a viewer cannot deny');

    const approve = await runSluice(['approve', '--request', asked?.id ?? '', '--for', '1h', '--reason', 'needs the build cache', ...config], { env: as(approver) });
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stderr, new RegExp(`coder may reach 127\\.0\\.0\\.1:${granted.port} until `));
    const result = await waiting;
    assert.equal(result.status, 200, 'the held request went through once approved');
    assert.match(result.headers, /rule=approval:apr_/);
    assert.equal(await pendingFor(granted.port), undefined, 'the approved request is cleared');

    const second = through(refused.port);
    await until(async () => (await pendingFor(refused.port)) !== undefined, 'the second held request to be listed');
    const other = await pendingFor(refused.port);
    const deny = await runSluice(['requests', 'deny', other?.id ?? '', ...config], { env: as(approver) });
    assert.equal(deny.code, 0, deny.stderr);
    const answer = await second;
    assert.equal(answer.status, 403);
    assert.match(answer.body, /NO_MATCHING_RULE/);
    const denied = await adminApi(sluice, 'GET', '/v1/requests?status=denied', viewer);
    assert.deepEqual((denied.body['requests'] as (Listed & { denied_by: string })[]).map((request) => [request.id, request.denied_by]), [[other?.id, 'alice']]);

    const both = await runSluice(['approve', '--request', 'req_x', '--agent', 'coder', '--for', '1h', '--reason', 'x', ...config], { env: as(approver) });
    assert.equal(both.code, 2);
    const missing = await runSluice(['approve', '--request', 'req_missing', '--for', '1h', '--reason', 'x', ...config], { env: as(approver) });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no access request req_missing \[ADMIN_NOT_FOUND\]/);
  });
});
