// The policy-aware DNS server: answers only what policy allows, never a forbidden address, and
// refuses tunnelling-shaped names, unusual types and floods; over UDP and TCP on 127.0.0.1.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { AddressGuard } from '../src/connect/address-guard.js';
import type { Agent } from '../src/agent.js';
import { KeyedTokenBucket, PolicyDnsServer, UpstreamResolver, type DnsQueryEvent, type DnsVerdict, type PolicyDnsOptions } from '../src/ingress/dns/index.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';

const BIG = Array.from({ length: 40 }, (_, i) => `93.184.1.${i + 1}`);
const CODER: Agent = { name: 'coder', groups: [], mode: 'strict', via: 'uid' };

let upstream: TestDnsServer;
const servers: PolicyDnsServer[] = [];
const resolvers: UpstreamResolver[] = [];

function decide(_agent: Agent, name: string): DnsVerdict {
  if (name === 'learn.example.test') return 'learn';
  if (name === 'denied.example.test' || !name.endsWith('example.test')) return 'refuse';
  return 'answer';
}

async function policyServer(overrides: Partial<PolicyDnsOptions> = {}): Promise<{ server: PolicyDnsServer; events: DnsQueryEvent[] }> {
  const events: DnsQueryEvent[] = [];
  const resolver = new UpstreamResolver({ servers: [upstream.server], timeoutMs: 1000 });
  resolvers.push(resolver);
  const server = await new PolicyDnsServer({
    hosts: ['127.0.0.1'],
    port: 0,
    identify: () => CODER,
    decide,
    addressGuard: new AddressGuard(),
    upstream: resolver,
    limiter: new KeyedTokenBucket(100, 1000),
    peerLimiter: new KeyedTokenBucket(1000, 100_000),
    limits: { maxLabelLength: 50, maxNameLength: 200 },
    refuseWith: 'refused',
    onQuery: (event) => events.push(event),
    ...overrides,
  }).start();
  servers.push(server);
  return { server, events };
}

let nextId = 1;
function query(name: string, type: dnsPacket.RecordType = 'A', extra: Partial<dnsPacket.Packet> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: nextId++, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }], ...extra });
}

async function udp(port: number, message: Buffer, timeoutMs = 3000): Promise<dnsPacket.DecodedPacket> {
  const socket = createSocket('udp4');
  try {
    socket.send(message, port, '127.0.0.1');
    const [reply] = (await once(socket, 'message', { signal: AbortSignal.timeout(timeoutMs) })) as [Buffer];
    return dnsPacket.decode(reply);
  } finally {
    socket.close();
  }
}

async function tcp(port: number, messages: Buffer[]): Promise<dnsPacket.DecodedPacket[]> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.write(Buffer.concat(messages.map((message) => dnsPacket.streamEncode(dnsPacket.decode(message)))));
  let buffered = Buffer.alloc(0);
  const replies: dnsPacket.DecodedPacket[] = [];
  for await (const chunk of socket) {
    buffered = Buffer.concat([buffered, chunk as Buffer]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      replies.push(dnsPacket.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))));
      buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
    }
    if (replies.length === messages.length) break;
  }
  socket.destroy();
  return replies;
}

const addresses = (reply: dnsPacket.DecodedPacket): string[] => (reply.answers ?? []).map((answer) => ('data' in answer ? String(answer.data) : ''));
const rcodeOf = (reply: dnsPacket.DecodedPacket): string => (reply as { rcode?: string }).rcode ?? '';

before(async () => {
  upstream = await startDnsServer({
    'allowed.example.test': { A: ['93.184.216.34'], AAAA: ['2606:2800:220:1:248:1893:25c8:1946'] },
    'learn.example.test': { A: ['93.184.216.36'] },
    'mixed.example.test': { A: ['10.0.0.7', '93.184.216.35'] },
    'rebind.example.test': { A: ['169.254.169.254', '127.0.0.1'] },
    'big.example.test': { A: BIG },
    'broken.example.test': { servfail: true },
  });
});
after(async () => {
  for (const server of servers) await server.stop();
  for (const resolver of resolvers) resolver.cancel();
  await upstream.stop();
});

describe('policy DNS answers', () => {
  test('answers an allowed name with the upstream\'s A and AAAA records', async () => {
    const { server, events } = await policyServer();
    assert.deepEqual(addresses(await udp(server.port, query('Allowed.Example.Test.'))), ['93.184.216.34']);
    assert.deepEqual(addresses(await udp(server.port, query('allowed.example.test', 'AAAA'))), ['2606:2800:220:1:248:1893:25c8:1946']);
    assert.deepEqual(events.map((event) => [event.agent?.name, event.name, event.outcome]), [
      ['coder', 'allowed.example.test', 'answered'],
      ['coder', 'allowed.example.test', 'answered'],
    ]);
  });

  test('refuses a name the policy refuses without asking upstream, as REFUSED or NXDOMAIN', async () => {
    const { server, events } = await policyServer();
    assert.equal(rcodeOf(await udp(server.port, query('denied.example.test'))), 'REFUSED');
    const nx = await policyServer({ refuseWith: 'nxdomain' });
    assert.equal(rcodeOf(await udp(nx.server.port, query('elsewhere.test'))), 'NXDOMAIN');
    assert.deepEqual(upstream.questionsFor('denied.example.test'), []);
    assert.equal(events[0]?.outcome, 'refused');
  });

  test('answers and records a name the policy would learn', async () => {
    const { server, events } = await policyServer();
    assert.deepEqual(addresses(await udp(server.port, query('learn.example.test'))), ['93.184.216.36']);
    assert.equal(events[0]?.outcome, 'learned');
  });

  test('drops private addresses from an answer and reports how many', async () => {
    const { server, events } = await policyServer();
    assert.deepEqual(addresses(await udp(server.port, query('mixed.example.test'))), ['93.184.216.35']);
    assert.equal(events[0]?.removed, 1);
  });

  test('refuses an answer made only of metadata and loopback addresses (DNS rebinding)', async () => {
    const { server, events } = await policyServer();
    const reply = await udp(server.port, query('rebind.example.test'));
    assert.equal(rcodeOf(reply), 'REFUSED');
    assert.deepEqual(addresses(reply), []);
    assert.deepEqual([events[0]?.outcome, events[0]?.removed], ['forbidden_address', 2]);
  });

  test('refuses metadata service names before any lookup', async () => {
    const { server, events } = await policyServer({ decide: () => 'answer' });
    assert.equal(rcodeOf(await udp(server.port, query('metadata.google.internal'))), 'REFUSED');
    assert.deepEqual(upstream.questionsFor('metadata.google.internal'), []);
    assert.equal(events[0]?.outcome, 'forbidden_address');
  });

  test('answers SERVFAIL when the upstream fails', async () => {
    const { server, events } = await policyServer();
    assert.equal(rcodeOf(await udp(server.port, query('broken.example.test'))), 'SERVFAIL');
    assert.equal(events[0]?.outcome, 'upstream_failed');
  });
});

describe('policy DNS against tunnelling', () => {
  test('refuses long labels, long names and odd bytes without asking upstream', async () => {
    const { server, events } = await policyServer({ decide: () => 'answer' });
    const long = `${'a'.repeat(51)}.example.test`;
    const deep = `${Array.from({ length: 30 }, () => 'abcdefg').join('.')}.example.test`;
    for (const name of [long, deep, 'a b.example.test', 'a\u00ff.example.test']) {
      assert.equal(rcodeOf(await udp(server.port, query(name))), 'REFUSED', name);
    }
    assert.deepEqual(events.map((event) => event.outcome), ['suspicious', 'suspicious', 'suspicious', 'suspicious']);
    assert.equal(upstream.questions.filter((question) => question.name.includes('a'.repeat(51))).length, 0);
  });

  test('refuses TXT and other record types and answers HTTPS empty', async () => {
    const { server, events } = await policyServer();
    assert.equal(rcodeOf(await udp(server.port, query('allowed.example.test', 'TXT'))), 'REFUSED');
    assert.equal(rcodeOf(await udp(server.port, query('allowed.example.test', 'NULL'))), 'REFUSED');
    const https = await udp(server.port, query('allowed.example.test', 'UNKNOWN_65' as dnsPacket.RecordType));
    assert.deepEqual([rcodeOf(https), https.answers?.length], ['NOERROR', 0]);
    assert.deepEqual(events.map((event) => event.outcome), ['type_refused', 'type_refused', 'answered']);
  });

  test('rate-limits each agent on its own', async () => {
    let who: Agent = CODER;
    const { server, events } = await policyServer({ identify: () => who, limiter: new KeyedTokenBucket(0.001, 3) });
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) codes.push(rcodeOf(await udp(server.port, query('allowed.example.test'))));
    assert.deepEqual(codes, ['NOERROR', 'NOERROR', 'NOERROR', 'REFUSED']);
    assert.equal(events[3]?.outcome, 'rate_limited');
    who = { ...CODER, name: 'reviewer' };
    assert.equal(rcodeOf(await udp(server.port, query('allowed.example.test'))), 'NOERROR');
  });

  test('refuses when the agent cannot be identified', async () => {
    const { server, events } = await policyServer({
      identify: () => {
        throw new Error('no socket owner');
      },
    });
    assert.equal(rcodeOf(await udp(server.port, query('allowed.example.test'))), 'REFUSED');
    assert.deepEqual([events[0]?.outcome, events[0]?.agent], ['unidentified', null]);
  });

  test('answers FORMERR to a query with two questions and ignores garbage', async () => {
    const { server } = await policyServer();
    const two = dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'allowed.example.test' }, { type: 'A', name: 'evil.test' }] });
    assert.equal(rcodeOf(await udp(server.port, two)), 'FORMERR');
    await assert.rejects(udp(server.port, Buffer.from([1, 2, 3]), 300), { name: 'AbortError' });
    assert.equal(rcodeOf(await udp(server.port, query('allowed.example.test'))), 'NOERROR');
  });
});

describe('policy DNS over TCP', () => {
  test('answers pipelined queries in order', async () => {
    const { server, events } = await policyServer();
    const replies = await tcp(server.port, [query('allowed.example.test'), query('denied.example.test'), query('mixed.example.test')]);
    assert.deepEqual(replies.map(rcodeOf), ['NOERROR', 'REFUSED', 'NOERROR']);
    assert.deepEqual(replies[2] === undefined ? [] : addresses(replies[2]), ['93.184.216.35']);
    assert.ok(events.every((event) => event.peer.transport === 'tcp'));
  });

  test('truncates a large answer over UDP and gives it whole over TCP', async () => {
    const { server } = await policyServer();
    const small = await udp(server.port, query('big.example.test'));
    assert.equal(small.flag_tc, true);
    assert.deepEqual(addresses(small), []);
    const [whole] = await tcp(server.port, [query('big.example.test')]);
    assert.deepEqual(addresses(whole ?? small).sort(), [...BIG].sort());
  });
});
