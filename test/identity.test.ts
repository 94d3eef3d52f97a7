// Agents are named by what they cannot forge: a proxy token stored only as a hash, the UID that
// owns the client socket, or the source address. Headers an agent sets never pick the identity.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type AuditLine } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

const TOKEN = 'tok-builder-3f9a1c';
const NOBODY = 65534;

describe('identity', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sha = createHash('sha256').update(TOKEN).digest('hex');
    const sluice = keep(await startSluice({
      config: `${ALLOW_LOOPBACK}
mode: strict
agents:
  - { name: builder, groups: [ci], token_sha256: ["${sha}"] }
  - { name: sandbox, uids: [${NOBODY}] }
  - { name: lab, cidrs: ["127.0.0.2/32"] }
`,
      rules: {
        'agents.yaml': `rules:
  - { id: builder-origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], groups: [ci] }
  - { id: sandbox-origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], agents: [sandbox] }
  - { id: lab-origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], agents: [lab] }
`,
      },
    }));
    return { origin, sluice };
  });

  async function lastDecisionFor(path: string): Promise<AuditLine | undefined> {
    return (await fixture().sluice.auditRecords()).filter((record) => record.kind === 'decision' && record.path === path).at(-1);
  }

  test('a Bearer or Basic proxy token names its agent; the config holds only its hash', async () => {
    const { origin, sluice } = fixture();
    const basic = await curl(['-x', sluice.proxyUrl, '-U', `builder:${TOKEN}`, `http://127.0.0.1:${origin.port}/by-basic`]);
    assert.equal(basic.status, 200, basic.headers);
    assert.match(basic.headers, /rule=builder-origin/);
    assert.deepEqual({ ...(await lastDecisionFor('/by-basic')) }.agent, 'builder');
    const bearer = await curl(['-x', sluice.proxyUrl, '--proxy-header', `Proxy-Authorization: Bearer ${TOKEN}`, `http://127.0.0.1:${origin.port}/by-bearer`]);
    assert.equal(bearer.status, 200);
    const record = await lastDecisionFor('/by-bearer');
    assert.equal(record?.agent, 'builder');
    assert.equal(record?.via, 'token');
    assert.ok(!JSON.stringify(sluice.logs).includes(TOKEN), 'the token never appears in a log line');
    assert.ok(!(await readFile(sluice.configFile, 'utf8')).includes(TOKEN));
  });

  test('a wrong token is 407, never a fall back to another identity', async () => {
    const { origin, sluice } = fixture();
    const wrong = await curl(['-x', sluice.proxyUrl, '-U', 'builder:not-the-token', `http://127.0.0.1:${origin.port}/wrong`]);
    assert.equal(wrong.status, 407);
    assert.match(wrong.headers, /proxy-authenticate/i);
  });

  test('with no token, the UID owning the client socket names the agent', async () => {
    const { origin, sluice } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, `http://127.0.0.1:${origin.port}/by-uid`], { uid: NOBODY });
    assert.equal(result.status, 200, result.headers);
    const record = await lastDecisionFor('/by-uid');
    assert.equal(record?.agent, 'sandbox');
    assert.equal(record?.via, 'uid');
  });

  test('the source address names the agent when no token or known UID does', async () => {
    const { origin, sluice } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '--interface', '127.0.0.2', `http://127.0.0.1:${origin.port}/by-cidr`]);
    assert.equal(result.status, 200, result.headers);
    const record = await lastDecisionFor('/by-cidr');
    assert.equal(record?.agent, 'lab');
    assert.equal(record?.via, 'cidr');
  });

  test('headers the agent sets (X-Forwarded-For, Forwarded) do not change who it is', async () => {
    const { origin, sluice } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '-H', 'X-Forwarded-For: 127.0.0.2', '-H', 'Forwarded: for=127.0.0.2', `http://127.0.0.1:${origin.port}/spoof`]);
    assert.equal(result.status, 403, 'anonymous in strict mode with no rule for it');
    assert.match(result.headers, /no_matching_rule/);
    const record = await lastDecisionFor('/spoof');
    assert.equal(record?.agent, 'anonymous');
  });
});
