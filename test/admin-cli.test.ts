// The admin commands as an operator runs them: `sluice run` as its own process, every command a
// child process finding it through the config's listen.admin: token, approve, approvals list,
// explain, revoke, mode, and plain words when the token is refused or Sluice is not running.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freshDir, runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { freePort, spawnSluice } from './support/sluice-process.js';
import { ALLOW_LOOPBACK } from './support/sluice.js';

const AGENT_TOKEN = `agent-${randomBytes(12).toString('hex')}`;

describe('sluice approve, approvals, explain, revoke and mode', () => {
  test('grant, inspect and take back access through the running Sluice', async (t) => {
    const origin = await startHttpOrigin();
    t.after(() => origin.close());
    const dir = await freshDir(t, 'sluice-admin-cli-');
    const proxyPort = await freePort();
    let adminPort = await freePort();
    while (adminPort === proxyPort) adminPort = await freePort();
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'none.yaml'), 'rules: []\n');
    await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
    const configFile = join(dir, 'sluice.yaml');
    const agents = `agents:\n  - { name: builder, token_sha256: ["${createHash('sha256').update(AGENT_TOKEN).digest('hex')}"] }`;
    const listen = `listen: { proxy: "127.0.0.1:${proxyPort}", admin: "127.0.0.1:${adminPort}" }`;
    await writeFile(configFile, `${listen}\nstate_dir: state\nrules: [rules]\nblocklists: blocklists.yaml\nmode: strict\n${ALLOW_LOOPBACK}\n${agents}\n`);
    const sluice = spawnSluice(['run', '--config', configFile]);
    t.after(() => sluice.stop());
    await sluice.waitForLog('sluice started', 60_000);
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;
    const config = ['--config', configFile];
    const path = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    const as = (token: string): NodeJS.ProcessEnv => ({ ...path, SLUICE_ADMIN_TOKEN: token });
    const created = async (name: string, role: string): Promise<string> => {
      const result = await runSluice(['token', 'create', '--name', name, '--role', role, ...config], { env: path });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    // Made while Sluice runs, by another process: picked up without a restart.
    const approver = await created('alice', 'approver');
    const admin = await created('root', 'admin');
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
    assert.equal((await curl(['-x', proxyUrl, '-U', `builder:${AGENT_TOKEN}`, `http://127.0.0.1:${origin.port}/x`])).status, 200);

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
    const tokenFile = join(dir, 'admin.token');
    await writeFile(tokenFile, `${admin}\n`, { mode: 0o600 });
    const switched = await runSluice(['mode', 'builder', 'learn', '--token-file', tokenFile, ...config], { env: path });
    assert.equal(switched.code, 0, switched.stderr);
    assert.equal((await runSluice(['explain', '--agent', 'builder', '--host', 'anything.test', ...config], { env: as(approver) })).code, 0);

    const refused = await runSluice(['approvals', 'list', ...config], { env: as('sluice_not-a-real-token') });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^sluice approvals: the admin API refused the token \(ADMIN_UNAUTHORIZED\)/);
    const noToken = await runSluice(['approvals', 'list', ...config], { env: path });
    assert.match(noToken.stderr, /no admin token: set SLUICE_ADMIN_TOKEN or pass --token-file/);

    assert.equal((await sluice.stop()).code, 0);
    const audit = await readFile(join(dir, 'state', 'audit.jsonl'), 'utf8');
    const approvals = audit.split('\n').filter((line) => line.includes('"kind":"approval"')).map((line) => JSON.parse(line) as { action: string; approver: string; ticket: string | null });
    assert.deepEqual(approvals.map((record) => `${record.action} ${record.approver} ${record.ticket}`), ['create alice CHG-7', 'first_use alice CHG-7', 'revoke alice CHG-7']);
    for (const secret of [approver, admin]) assert.ok(!audit.includes(secret) && !sluice.stdout().includes(secret) && !sluice.stderr().includes(secret), 'an admin token was written out');
    const down = await runSluice(['approvals', 'list', ...config], { env: as(approver) });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^sluice approvals: Sluice is not running: nothing answers on http:\/\/127\.0\.0\.1:\d+ \(listen\.admin\)/);
  });
});
