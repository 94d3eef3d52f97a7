// A DNS flood cannot fill the audit log: queries that are not one standard IN question, queries
// beyond a peer's rate and names that fail the screen are counted into one dns_summary per
// interval, never written one record each and never with the name the agent chose.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { AuditChain } from '../src/audit/chain.js';
import { startPolicyDns, type RunningPolicyDns } from '../src/ingress/dns/index.js';
import { Metrics } from '../src/obs/metrics.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { ManualTimer } from './support/manual-timer.js';
import { policyDnsConfig, policyDnsSetup } from './support/policy-dns-config.js';

let upstream: TestDnsServer;
let root = '';

interface Instance {
  readonly dns: RunningPolicyDns;
  readonly metrics: Metrics;
  readonly summaries: ManualTimer;
  /** closes the server and the chain and returns every record written */
  finish(): Promise<Record<string, unknown>[]>;
  /** the audit file as text, after finish */
  text(): Promise<string>;
}

let instances = 0;
async function startInstance(dnsConfig = ''): Promise<Instance> {
  const file = join(root, `audit-${++instances}.jsonl`);
  const audit = await AuditChain.open(file, { fsync: false });
  const summaries = new ManualTimer();
  const metrics = new Metrics({ processMetrics: false });
  const config = policyDnsConfig(upstream.server, dnsConfig);
  const dns = await startPolicyDns({ ...policyDnsSetup(config), audit, metrics, summarySchedule: summaries.schedule });
  const text = (): Promise<string> => readFile(file, 'utf8');
  return {
    dns,
    metrics,
    summaries,
    text,
    finish: async () => {
      summaries.fire();
      await dns.close();
      await audit.close();
      return (await text()).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/** Sends one query from `socket` and returns the rcode of its reply. */
async function ask(socket: Socket, port: number, query: dnsPacket.Packet): Promise<string> {
  socket.send(dnsPacket.encode(query), port, '127.0.0.1');
  const [reply] = (await once(socket, 'message', { signal: AbortSignal.timeout(3000) })) as [Buffer];
  return (dnsPacket.decode(reply) as { rcode?: string }).rcode ?? '';
}

async function withSocket<T>(use: (socket: Socket) => Promise<T>): Promise<T> {
  const socket = createSocket('udp4');
  try {
    return await use(socket);
  } finally {
    socket.close();
  }
}

/** Not one standard IN question: class CH, a STATUS opcode, or two questions. */
function malformed(index: number): dnsPacket.Packet {
  const name = `leak-${index}.secret.example.test`;
  switch (index % 3) {
    case 0:
      return { type: 'query', id: index, questions: [{ type: 'A', name, class: 'CH' }] };
    case 1:
      return { type: 'query', id: index, flags: 2 << 11, questions: [{ type: 'A', name }] };
    default:
      return { type: 'query', id: index, questions: [{ type: 'A', name }, { type: 'A', name: `docs.${name}` }] };
  }
}

async function outcomes(metrics: Metrics): Promise<Record<string, number>> {
  const values = (await metrics.dnsQueries.get()).values;
  return Object.fromEntries(values.map((value) => [String(value.labels.outcome), value.value]));
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'sluice-dns-flood-'));
  upstream = await startDnsServer({ 'docs.example.test': { A: ['93.184.216.34'] } });
});
after(async () => {
  await upstream.stop();
  await rm(root, { recursive: true, force: true });
});

test('a thousand malformed queries leave one dns_summary with their count and none of their names', async () => {
  const instance = await startInstance();
  const rcodes = await withSocket(async (socket) => {
    const seen: string[] = [];
    for (let index = 0; index < 1000; index++) seen.push(await ask(socket, instance.dns.port, malformed(index)));
    return seen;
  });
  assert.deepEqual(new Set(rcodes), new Set(['FORMERR']));
  assert.equal((await outcomes(instance.metrics)).malformed, 1000);
  const records = await instance.finish();
  assert.deepEqual(records.map((record) => [record.kind, record.counts]), [['dns_summary', [{ agent: null, peer: '127.0.0.1', outcome: 'malformed', count: 1000 }]]]);
  assert.doesNotMatch(await instance.text(), /leak-|secret/, 'no query name reaches the audit log');
});

test('queries beyond a peer\'s rate are refused before identification and counted with the malformed ones', async () => {
  const instance = await startInstance(', peer_queries_per_second: 0.001, peer_burst: 20');
  const rcodes = await withSocket(async (socket) => {
    const seen: string[] = [];
    for (let index = 0; index < 50; index++) seen.push(await ask(socket, instance.dns.port, malformed(index)));
    // A well-formed query from an agent is refused too: the peer's budget is spent.
    seen.push(await ask(socket, instance.dns.port, { type: 'query', id: 99, questions: [{ type: 'A', name: 'docs.example.test' }] }));
    return seen;
  });
  assert.deepEqual(rcodes, [...Array<string>(20).fill('FORMERR'), ...Array<string>(31).fill('REFUSED')]);
  assert.equal(upstream.questionsFor('docs.example.test').length, 0);
  const records = await instance.finish();
  assert.deepEqual(records.map((record) => [record.kind, record.counts]), [
    ['dns_summary', [
      { agent: null, peer: '127.0.0.1', outcome: 'malformed', count: 20 },
      { agent: null, peer: '127.0.0.1', outcome: 'rate_limited', count: 31 },
    ]],
  ]);
});

test('names that fail the screen are counted for their agent and never written, while a screened refusal keeps its record', async () => {
  const instance = await startInstance();
  const rcodes = await withSocket(async (socket) => {
    const seen: string[] = [];
    for (let index = 0; index < 100; index++) {
      seen.push(await ask(socket, instance.dns.port, { type: 'query', id: index, questions: [{ type: 'A', name: `${'x'.repeat(55)}${index}.tunnel.example.test` }] }));
    }
    seen.push(await ask(socket, instance.dns.port, { type: 'query', id: 100, questions: [{ type: 'A', name: 'elsewhere.example.test' }] }));
    return seen;
  });
  assert.deepEqual(rcodes, [...Array<string>(100).fill('REFUSED'), 'REFUSED']);
  const records = await instance.finish();
  assert.deepEqual(records.map((record) => [record.kind, record.name ?? null, record.counts ?? null]), [
    ['dns', 'elsewhere.example.test', null],
    ['dns_summary', null, [{ agent: 'tester', peer: '127.0.0.1', outcome: 'suspicious', count: 100 }]],
  ]);
  assert.doesNotMatch(await instance.text(), /xxxxx|tunnel/, 'no unscreened name reaches the audit log');
});
