// The admin commands as an operator runs them (the built CLI as a child process) against a running
// Sluice found through the config's listen.admin: approve, approvals list, explain, revoke, mode,
// and plain words when the token is refused or Sluice is not running.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { makeAdminToken } from './support/admin-api.js';
import { runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { freePort } from './support/sluice-process.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';

const AGENT_TOKEN = `agent-${randomBytes(12).toString('hex')}`;

describe('sluice approve, approvals, explain, revoke and mode', () => {
  test('grant, inspect and take back access through the running Sluice', async (t) => {
    const origin = await startHttpOrigin();
    t.after(() => origin.close());
    const sluice = await startSluice({
      listen: { admin: `127.0.0.1:${await freePort()}` },
      config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: builder, token_sha256: ["${createHash('sha256').update(AGENT_TOKEN).digest('hex')}"] }\n`,
    });
    t.after(() => sluice.close());
    const approver = await makeAdminToken(sluice, 'alice', 'approver');
    const admin = await makeAdminToken(sluice, 'root', 'admin');
    const config = ['--config', sluice.configFile];
    const as = (token: string): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', SLUICE_ADMIN_TOKEN: token });
    const target = ['--agent', 'builder', '--host', '127.0.0.1', '--port', String(origin.port)];

    const before = await runSluice(['explain', ...target, ...config], { env: as(approver) });
    assert.equal(before.code, 1, before.stderr);
    assert.match(before.stdout, /^verdict: +deny \(no_matching_rule\)$/m);

    const granted = await runSluice(['approve', ...target, '--for', '2h', '--reason', 'release build', '--ticket', 'CHG-7', ...config], { env: as(approver) });
    assert.equal(granted.code, 0, granted.stderr);
    const id = granted.stdout.trim();
    assert.match(id, /^apr_[A-Za-z0-9_-]+$/);
    assert.match(granted.stderr, /builder may reach 127\.0\.0\.1:\d+ until \d{4}-/);

    const listed = await runSluice(['approvals', 'list', ...config], { env: as(approver) });
    assert.match(listed.stdout, new RegExp(`^${id} +builder +127\\.0\\.0\\.1 +${origin.port} +\\S+ +alice +release build$`, 'm'));

    const allowed = await runSluice(['explain', ...target, '--method', 'GET', '--path', '/x', ...config], { env: as(approver) });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, new RegExp(`^approval: +${id} by alice, until `, 'm'));
    assert.equal((await curl(['-x', sluice.proxyUrl, '-U', `builder:${AGENT_TOKEN}`, `http://127.0.0.1:${origin.port}/x`])).status, 200);

    const tooLong = await runSluice(['approve', ...target, '--for', '25h', '--reason', 'x', ...config], { env: as(approver) });
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /above approvals\.max_ttl_ms \(86400000\) \[ADMIN_BAD_REQUEST\]/);

    assert.equal((await runSluice(['revoke', id, ...config], { env: as(approver) })).code, 0);
    assert.equal((await runSluice(['explain', ...target, ...config], { env: as(approver) })).code, 1);
    const again = await runSluice(['revoke', id, ...config], { env: as(approver) });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no approval .* in force \[ADMIN_NOT_FOUND\]/);

    const notAdmin = await runSluice(['mode', 'builder', 'learn', ...config], { env: as(approver) });
    assert.equal(notAdmin.code, 1);
    assert.match(notAdmin.stderr, /needs the admin role/);
    const tokenFile = join(sluice.dir, 'admin.token');
    await writeFile(tokenFile, `${admin}\n`, { mode: 0o600 });
    const switched = await runSluice(['mode', 'builder', 'learn', '--token-file', tokenFile, ...config], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    assert.equal(switched.code, 0, switched.stderr);
    assert.equal((await runSluice(['explain', '--agent', 'builder', '--host', 'anything.test', ...config], { env: as(approver) })).code, 0);

    const refused = await runSluice(['approvals', 'list', ...config], { env: as('sluice_not-a-real-token') });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^sluice approvals: the admin API refused the token \(ADMIN_UNAUTHORIZED\)/);
    const noToken = await runSluice(['approvals', 'list', ...config], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    assert.match(noToken.stderr, /no admin token: set SLUICE_ADMIN_TOKEN or pass --token-file/);

    await sluice.stop();
    const down = await runSluice(['approvals', 'list', ...config], { env: as(approver) });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^sluice approvals: Sluice is not running: nothing answers on http:\/\/127\.0\.0\.1:\d+ \(listen\.admin\)/);
  });
});
