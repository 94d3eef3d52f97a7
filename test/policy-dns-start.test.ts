// The policy DNS server as the composition root starts it: identity by the querying socket's
// owner, the proxy's rules as policy, and an audit record for every query not simply answered.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/audit/chain.js';
import { configSchema } from '../src/config/schema.js';
import { loadYamlText } from '../src/config/yaml.js';
import { AddressGuard } from '../src/connect/address-guard.js';
import { startPolicyDns, type RunningPolicyDns } from '../src/ingress/dns/index.js';
import { compileRules, parseRuleText } from '../src/policy/rules.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';

const RULES = 'rules:\n  - { id: docs, action: allow, hosts: [docs.example.test] }\n';
const uid = process.getuid?.() ?? 0;
let upstream: TestDnsServer;
let dns: RunningPolicyDns;
let dir = '';
let audit: AuditChain;

async function ask(name: string): Promise<string> {
  const socket = createSocket('udp4');
  try {
    socket.send(dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name }] }), dns.port, '127.0.0.1');
    const [reply] = (await once(socket, 'message', { signal: AbortSignal.timeout(3000) })) as [Buffer];
    return (dnsPacket.decode(reply) as { rcode?: string }).rcode ?? '';
  } finally {
    socket.close();
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-dns-'));
  audit = await AuditChain.open(join(dir, 'audit.jsonl'), { fsync: false });
  upstream = await startDnsServer({ 'docs.example.test': { A: ['93.184.216.34'] } });
  const config = loadYamlText(
    'sluice.yaml',
    `mode: strict
listen: { dns: '127.0.0.1:0' }
anonymous: { allow: false }
agents: [{ name: tester, uids: [${uid}] }]
dns: { upstreams: ['${upstream.server}'], queries_per_second: 0.01, burst: 3 }
`,
    configSchema,
  ).value;
  const rules = compileRules([parseRuleText('rules.yaml', RULES)]);
  dns = await startPolicyDns({
    config,
    policy: () => ({ rules, anonymousAllowed: false }),
    guard: new AddressGuard(),
    audit,
  });
});
after(async () => {
  await dns.close();
  await upstream.stop();
  await audit.close();
  await rm(dir, { recursive: true, force: true });
});

test('identifies the querying user, answers what the rules allow and audits the rest, a flood once', async () => {
  assert.equal(await ask('docs.example.test'), 'NOERROR');
  assert.equal(await ask('elsewhere.example.test'), 'REFUSED');
  assert.equal(await ask('docs.example.test'), 'NOERROR');
  for (let i = 0; i < 5; i++) assert.equal(await ask('docs.example.test'), 'REFUSED');
  await audit.close();
  const audited = (await readFile(join(dir, 'audit.jsonl'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    audited.map((record) => [record['agent'], record['via'], record['name'], record['outcome']]),
    [
      ['tester', 'uid', 'elsewhere.example.test', 'refused'],
      ['tester', 'uid', 'docs.example.test', 'rate_limited'],
    ],
  );
});
