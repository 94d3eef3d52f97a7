// The policy DNS server as the composition root starts it: identity by the querying socket's
// owner, the proxy's rules as policy, an audit record for a refusal and a summary for a flood.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/audit/chain.js';
import { startPolicyDns, type RunningPolicyDns } from '../src/ingress/dns/index.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { ManualTimer } from './support/manual-timer.js';
import { policyDnsConfig, policyDnsSetup } from './support/policy-dns-config.js';

let upstream: TestDnsServer;
let dns: RunningPolicyDns;
let dir = '';
let audit: AuditChain;
const summaries = new ManualTimer();

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
  dns = await startPolicyDns({
    ...policyDnsSetup(policyDnsConfig(upstream.server, ', queries_per_second: 0.01, burst: 3')),
    audit,
    summarySchedule: summaries.schedule,
  });
});
after(async () => {
  await dns.close();
  await upstream.stop();
  await audit.close();
  await rm(dir, { recursive: true, force: true });
});

test('identifies the querying user, answers what the rules allow, records a refusal, counts the answers and a flood', async () => {
  assert.equal(await ask('docs.example.test'), 'NOERROR');
  assert.equal(await ask('elsewhere.example.test'), 'REFUSED');
  assert.equal(await ask('docs.example.test'), 'NOERROR');
  for (let i = 0; i < 5; i++) assert.equal(await ask('docs.example.test'), 'REFUSED');
  assert.equal(summaries.fire(), 1);
  await audit.close();
  const audited = (await readFile(join(dir, 'audit.jsonl'), 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    audited.slice(0, 1).map((record) => [record['kind'], record['agent'], record['via'], record['name'], record['outcome']]),
    [['dns', 'tester', 'uid', 'elsewhere.example.test', 'refused']],
  );
  assert.deepEqual(audited.slice(1).map((record) => [record['kind'], record['counts'], record['overflow']]), [
    [
      'dns_summary',
      [
        { agent: 'tester', peer: '127.0.0.1', outcome: 'answered', count: 2 },
        { agent: 'tester', peer: '127.0.0.1', outcome: 'rate_limited', count: 5 },
      ],
      0,
    ],
  ]);
});
