// The admin API's door: Bearer tokens only (loopback earns nothing), 401 vs 403 decided before a
// body is read, roles viewer < approver < admin, tokens made by `sluice token` and picked up by the
// running Sluice without a restart, stored only hashed, and failed logins limited and audited.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { tokenCommand } from '../src/cli/token.js';
import { runCommand, runSluice } from './support/cli.js';
import { startSluice, type AuditLine, type RunningSluice } from './support/sluice.js';
import { until } from './support/until.js';
import { suiteFixture } from './support/suite-fixture.js';

async function makeToken(sluice: RunningSluice, name: string, role: string): Promise<string> {
  const result = await runCommand(tokenCommand, ['create', '--config', sluice.configFile, '--name', name, '--role', role]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  return lines[lines.length - 1] ?? '';
}

function call(sluice: RunningSluice, method: string, path: string, token?: string, body?: string): Promise<Response> {
  return fetch(`${sluice.adminUrl}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
  });
}

async function filesUnder(dir: string): Promise<string> {
  let text = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) text += await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return text;
}

describe('admin API authentication and roles', () => {
  const fixture = suiteFixture(async (keep) => {
    const sluice = keep(await startSluice({ config: 'admin:\n  max_failed_logins: 1000\n' }));
    // Made while Sluice runs: the API must take them up without a restart.
    const tokens = { viewer: await makeToken(sluice, 'ops-viewer', 'viewer'), approver: await makeToken(sluice, 'ops-approver', 'approver'), admin: await makeToken(sluice, 'ops-admin', 'admin') };
    return { sluice, tokens };
  });

  test('a call from loopback without a token is 401 with a Bearer challenge and the proxy error shape', async () => {
    const { sluice } = fixture();
    const response = await call(sluice, 'GET', '/v1/tokens');
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /);
    const body = (await response.json()) as { error: { code: string; message: string; rule: null; request_id: string } };
    assert.equal(body.error.code, 'ADMIN_UNAUTHORIZED');
    assert.equal(body.error.rule, null);
    assert.match(body.error.request_id, /^[0-9a-f-]{36}$/);
  });

  test('an unknown token, or a scheme other than Bearer, is 401 even for an unknown route', async () => {
    const { sluice, tokens } = fixture();
    assert.equal((await call(sluice, 'GET', '/v1/tokens', `${tokens.admin}x`)).status, 401);
    assert.equal((await call(sluice, 'GET', '/v1/no-such-route', 'nope')).status, 401);
    const basic = await fetch(`${sluice.adminUrl}/v1/tokens`, { headers: { authorization: `Basic ${Buffer.from(`x:${tokens.admin}`).toString('base64')}` } });
    assert.equal(basic.status, 401);
  });

  test('each role reaches what it may and gets 403 for what it may not', async () => {
    const { sluice, tokens } = fixture();
    assert.equal((await call(sluice, 'GET', '/v1/tokens', tokens.viewer)).status, 403);
    assert.equal((await call(sluice, 'GET', '/v1/tokens', tokens.approver)).status, 403);
    const listed = await call(sluice, 'GET', '/v1/tokens', tokens.admin);
    assert.equal(listed.status, 200);
    const names = ((await listed.json()) as { tokens: { name: string; role: string }[] }).tokens.map((token) => `${token.name}:${token.role}`);
    assert.deepEqual(names, ['ops-viewer:viewer', 'ops-approver:approver', 'ops-admin:admin']);
    const forbidden = (await (await call(sluice, 'DELETE', '/v1/tokens/ops-admin', tokens.approver)).json()) as { error: { code: string; message: string } };
    assert.equal(forbidden.error.code, 'ADMIN_FORBIDDEN');
    assert.match(forbidden.error.message, /needs the admin role; token "ops-approver" is approver/);
  });

  test('the role is checked before the body is read: a viewer sending a broken body gets 403, not 400', async () => {
    const { sluice, tokens } = fixture();
    assert.equal((await call(sluice, 'POST', '/v1/tokens', tokens.viewer, '{not json')).status, 403);
    const bad = await call(sluice, 'POST', '/v1/tokens', tokens.admin, '{not json');
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'ADMIN_BAD_REQUEST');
  });

  test('unknown routes are 404 and known routes with another method 405 with Allow, once authenticated', async () => {
    const { sluice, tokens } = fixture();
    assert.equal((await call(sluice, 'GET', '/v1/nothing-here', tokens.viewer)).status, 404);
    const wrong = await call(sluice, 'PUT', '/v1/tokens', tokens.admin);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, POST');
  });

  test('a token made through the API works at once; revoked, it is refused at its next use', async () => {
    const { sluice, tokens } = fixture();
    const created = await call(sluice, 'POST', '/v1/tokens', tokens.admin, JSON.stringify({ name: 'bot', role: 'viewer' }));
    assert.equal(created.status, 201);
    const { token } = (await created.json()) as { token: string };
    assert.equal((await call(sluice, 'POST', '/v1/tokens', tokens.admin, JSON.stringify({ name: 'bot', role: 'viewer' }))).status, 409);
    assert.equal((await call(sluice, 'GET', '/v1/tokens', token)).status, 403, 'a viewer is known, just not allowed');
    assert.equal((await call(sluice, 'DELETE', '/v1/tokens/bot', tokens.admin)).status, 200);
    assert.equal((await call(sluice, 'GET', '/v1/tokens', token)).status, 401);
    assert.equal((await call(sluice, 'DELETE', '/v1/tokens/bot', tokens.admin)).status, 404);
  });

  test('probes stay open without a token', async () => {
    const { sluice } = fixture();
    assert.equal((await fetch(`${sluice.adminUrl}/healthz`)).status, 200);
    assert.equal((await fetch(`${sluice.adminUrl}/metrics`)).status, 200);
  });

  test('no plaintext token reaches the state directory, the audit chain or the logs', async () => {
    const { sluice, tokens } = fixture();
    const stored = JSON.parse(await readFile(join(sluice.stateDir, 'admin-tokens.json'), 'utf8')) as { tokens: { sha256: string }[] };
    assert.equal(stored.tokens.length, 3);
    const everything = (await filesUnder(sluice.dir)) + JSON.stringify(sluice.logs);
    for (const token of Object.values(tokens)) assert.ok(!everything.includes(token), 'a plaintext admin token was written somewhere');
    // Each pickup of a changed token file is audited; the last one names the tokens in force.
    await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'admin_tokens'), 'an admin_tokens record');
    const loaded = (await sluice.auditRecords()).filter((record) => record.kind === 'admin_tokens');
    assert.deepEqual(loaded.at(-1)?.['tokens'], [
      { name: 'ops-viewer', role: 'viewer' },
      { name: 'ops-approver', role: 'approver' },
      { name: 'ops-admin', role: 'admin' },
    ]);
  });
});

describe('failed admin logins', () => {
  test('are limited per peer (429 even with a good token) and audited as one summary, not one record each', async (t) => {
    const sluice = await startSluice({ config: 'admin:\n  max_failed_logins: 3\n' });
    t.after(() => sluice.close());
    const admin = await makeToken(sluice, 'root', 'admin');
    for (let attempt = 0; attempt < 3; attempt += 1) assert.equal((await call(sluice, 'GET', '/v1/tokens', `guess-${attempt}`)).status, 401);
    assert.equal((await call(sluice, 'GET', '/v1/tokens')).status, 429);
    const limited = await call(sluice, 'GET', '/v1/tokens', admin);
    assert.equal(limited.status, 429);
    assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'ADMIN_RATE_LIMITED');
    await sluice.stop();
    const summaries = (await sluice.auditRecords()).filter((record) => record.kind === 'admin_auth_failures');
    assert.equal(summaries.length, 1);
    assert.deepEqual(summaries[0]?.['counts'], [{ peer: '127.0.0.1', reason: 'unknown_token', count: 3 }]);
    const text = JSON.stringify(summaries);
    assert.ok(!text.includes('guess-'), 'the tokens tried are never recorded');
  });
});

describe('a broken token file', () => {
  test('keeps the tokens in force, audited as rejected, until it reads again', async (t) => {
    const sluice = await startSluice();
    t.after(() => sluice.close());
    const admin = await makeToken(sluice, 'root', 'admin');
    assert.equal((await call(sluice, 'GET', '/v1/tokens', admin)).status, 200);
    await writeFile(join(sluice.stateDir, 'admin-tokens.json'), '{"version": 1, "tokens": [');
    assert.equal((await call(sluice, 'GET', '/v1/tokens', admin)).status, 200, 'a torn edit locks nobody out');
    const rejectedRecords = async (): Promise<AuditLine[]> => (await sluice.auditRecords()).filter((record) => record.kind === 'admin_tokens' && record['outcome'] === 'rejected');
    await until(async () => (await rejectedRecords()).length > 0, 'the rejected admin_tokens record');
    const rejected = await rejectedRecords();
    assert.equal(rejected.length, 1);
    assert.match(String(rejected[0]?.['error']), /admin-tokens\.json: not valid JSON/);
    await writeFile(join(sluice.stateDir, 'admin-tokens.json'), '{"version": 1, "tokens": []}\n');
    assert.equal((await call(sluice, 'GET', '/v1/tokens', admin)).status, 401, 'once it reads again, it alone decides');
  });
});

describe('sluice token (the real command)', () => {
  test('create prints the token alone on the last stdout line once; list shows it; revoke removes it', async (t) => {
    const sluice = await startSluice();
    t.after(() => sluice.close());
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const created = await runSluice(['token', 'create', '--config', sluice.configFile, '--name', 'ci', '--role', 'approver'], { env });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^sluice_[A-Za-z0-9_-]{43}\n$/);
    const listed = await runSluice(['token', 'list', '--config', sluice.configFile], { env });
    assert.match(listed.stdout, /^ci\tapprover\t\d{4}-/m);
    assert.ok(!listed.stdout.includes(created.stdout.trim()), 'list never shows a token');
    const again = await runSluice(['token', 'create', '--config', sluice.configFile, '--name', 'ci', '--role', 'viewer'], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists already/);
    const badRole = await runSluice(['token', 'create', '--config', sluice.configFile, '--name', 'x', '--role', 'root'], { env });
    assert.equal(badRole.code, 2);
    assert.equal((await runSluice(['token', 'revoke', 'ci', '--config', sluice.configFile], { env })).code, 0);
    assert.equal((await runSluice(['token', 'revoke', 'ci', '--config', sluice.configFile], { env })).code, 1);
  });
});

describe('admin.metrics_token_sha256', () => {
  test('/metrics needs the scrape token when one is configured; the probes stay open', async (t) => {
    const scrapeToken = 'prometheus-scrape-token-1234';
    const sha = createHash('sha256').update(scrapeToken).digest('hex');
    const sluice = await startSluice({ config: `admin:\n  metrics_token_sha256: "${sha}"\n` });
    t.after(() => sluice.close());
    const none = await call(sluice, 'GET', '/metrics');
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal((await call(sluice, 'GET', '/metrics', `${scrapeToken}x`)).status, 401);
    const scraped = await call(sluice, 'GET', '/metrics', scrapeToken);
    assert.equal(scraped.status, 200);
    assert.match(await scraped.text(), /^sluice_decisions_total|# HELP sluice_/m);
    assert.equal((await call(sluice, 'GET', '/healthz')).status, 200);
    assert.equal((await call(sluice, 'GET', '/readyz')).status, 200);
  });
});
