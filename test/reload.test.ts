// SIGHUP reload: new rule files and blocklist copies take effect without a restart; a broken
// rule file is refused whole, audited, and the rules in force stay.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { spawnSluice, freePort } from './support/sluice-process.js';
import { ALLOW_LOOPBACK, startSluice, type AuditLine } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

describe('reloading a running proxy', () => {
  const rule = (action: string): string => `rules:\n  - { id: origin-${action}, action: ${action}, hosts: [127.0.0.1], ports: [PORT] }\n`;
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sluice = keep(await startSluice({ config: `${ALLOW_LOOPBACK}\nmode: strict`, rules: { 'team.yaml': rule('allow').replace('PORT', String(origin.port)) } }));
    return { origin, sluice, url: `http://127.0.0.1:${origin.port}/` };
  });

  function kinds(): Promise<AuditLine[]> {
    return fixture().sluice.auditRecords();
  }

  test('changed rule files and local blocklist entries apply after reload', async () => {
    const { origin, sluice, url } = fixture();
    assert.equal((await curl(['-x', sluice.proxyUrl, url])).status, 200);
    await writeFile(join(sluice.dir, 'rules', 'team.yaml'), rule('deny').replace('PORT', String(origin.port)));
    await sluice.sluice.reload();
    const denied = await curl(['-x', sluice.proxyUrl, url]);
    assert.equal(denied.status, 403);
    assert.match(denied.headers, /rule=origin-deny/);
    assert.ok((await kinds()).some((record) => record.kind === 'reload' && record.outcome === 'accepted'));

    await writeFile(join(sluice.dir, 'rules', 'team.yaml'), rule('allow').replace('PORT', String(origin.port)));
    await writeFile(join(sluice.dir, 'local.txt'), '127.0.0.1\n');
    await sluice.sluice.reload();
    const listed = await curl(['-x', sluice.proxyUrl, url]);
    assert.equal(listed.status, 403);
    assert.match(listed.headers, /reason=blocklisted; rule=blocklist:local/);
    await writeFile(join(sluice.dir, 'local.txt'), '');
    await sluice.sluice.reload();
  });

  test('a broken rule file is refused whole and the rules in force stay', async () => {
    const { sluice, url } = fixture();
    await writeFile(join(sluice.dir, 'rules', 'team.yaml'), 'rules:\n  - { id: wide, action: allow, hosts: ["*.com"] }\n');
    await sluice.sluice.reload();
    assert.equal((await curl(['-x', sluice.proxyUrl, url])).status, 200, 'the previous allow rule still decides');
    const rejected = (await kinds()).filter((record) => record.kind === 'reload' && record.outcome === 'rejected').at(-1);
    assert.match(JSON.stringify(rejected?.errors), /team\.yaml:2:\d+: .*public suffix/);
  });

  test('sluice run reloads on SIGHUP', async (t) => {
    const { origin, sluice, url } = fixture();
    const [proxyPort, adminPort] = [await freePort(), await freePort()];
    const dir = sluice.dir;
    await writeFile(join(dir, 'rules', 'team.yaml'), rule('allow').replace('PORT', String(origin.port)));
    const config = join(dir, 'hup.yaml');
    await writeFile(config, `listen: { proxy: "127.0.0.1:${proxyPort}", admin: "127.0.0.1:${adminPort}" }\nstate_dir: hup-state\nrules: [rules]\nblocklists: blocklists.yaml\nmode: strict\n${ALLOW_LOOPBACK}\n`);
    const child = spawnSluice(['run', '--config', config]);
    t.after(() => child.stop());
    await child.waitForLog('sluice started');
    const proxy = `http://127.0.0.1:${proxyPort}`;
    assert.equal((await curl(['-x', proxy, url])).status, 200);
    await writeFile(join(dir, 'rules', 'team.yaml'), rule('deny').replace('PORT', String(origin.port)));
    child.child.kill('SIGHUP');
    // The new rules are in force before the reload is logged: no polling, no clock.
    await child.waitForLog('rules reloaded');
    assert.equal((await curl(['-x', proxy, url])).status, 403, 'SIGHUP reloaded the rules');
  });
});
