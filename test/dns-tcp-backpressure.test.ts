// DNS over TCP under a client that pipelines tens of thousands of queries and never reads: the
// server stops reading once its replies back up, so what it holds stays bounded, and it answers
// every query, in order, once the client reads again.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { AddressGuard } from '../src/connect/address-guard.js';
import type { Agent } from '../src/agent.js';
import { KeyedTokenBucket, MAX_PENDING_REPLIES, PolicyDnsServer, UpstreamResolver, type TcpBacklog } from '../src/ingress/dns/index.js';
import { until } from './support/until.js';

const CODER: Agent = { name: 'coder', groups: [], mode: 'strict', via: 'uid' };
const QUERIES = 40_000;
// About 250 bytes a reply: 10 MB of answers, more than loopback's socket buffers hold.
const NAME = `${Array.from({ length: 4 }, () => 'a'.repeat(60)).join('.')}.test`;

test('a client that pipelines and never reads is paused with bounded replies held, and is answered in full once it reads', async () => {
  let answered = 0;
  const upstream = new UpstreamResolver({ servers: ['127.0.0.1:9'], timeoutMs: 1000 });
  const server = await new PolicyDnsServer({
    hosts: ['127.0.0.1'],
    port: 0,
    identify: () => CODER,
    decide: () => 'refuse',
    addressGuard: new AddressGuard(),
    upstream,
    limiter: new KeyedTokenBucket(1_000_000, 1_000_000),
    peerLimiter: new KeyedTokenBucket(1_000_000, 1_000_000),
    limits: { maxLabelLength: 63, maxNameLength: 253 },
    refuseWith: 'refused',
    tcpIdleMs: 60_000,
    onQuery: () => void (answered += 1),
  }).start();
  const client = connect({ host: '127.0.0.1', port: server.port });
  try {
    await once(client, 'connect');
    client.pause();
    const queries = Array.from({ length: QUERIES }, (_, index) => dnsPacket.streamEncode({ type: 'query', id: index % 65_536, questions: [{ type: 'A', name: NAME }] }));
    client.write(Buffer.concat(queries));

    // Either the server stops reading (bounded) or it answers everything into its own memory.
    const held = (): TcpBacklog | undefined => server.tcpBacklog()[0];
    await until(() => answered === QUERIES || (held()?.reading === false && (held()?.unsentBytes ?? 0) > 0), 'the server to stop reading or answer all', 60_000);
    const backlog = held();
    assert.ok(backlog !== undefined);
    assert.equal(backlog.reading, false, 'the server paused reading');
    assert.ok(answered < QUERIES, `answered ${answered} of ${QUERIES} while the client read nothing`);
    assert.ok(backlog.pendingReplies <= MAX_PENDING_REPLIES, `${backlog.pendingReplies} pending replies`);
    assert.ok(backlog.unsentBytes <= 16_384 + MAX_PENDING_REPLIES * 300, `${backlog.unsentBytes} bytes of replies held in memory`);
    assert.ok(client.writableLength > 0, 'the rest of the queries wait on the client, not in the server');

    client.resume();
    let buffered = Buffer.alloc(0);
    const ids: number[] = [];
    for await (const chunk of client) {
      buffered = Buffer.concat([buffered, chunk as Buffer]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        ids.push(dnsPacket.decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0))).id ?? -1);
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (ids.length === QUERIES) break;
    }
    assert.equal(ids.length, QUERIES);
    assert.ok(ids.every((id, index) => id === index % 65_536), 'replies come in query order');
  } finally {
    client.destroy();
    await server.stop();
    upstream.cancel();
  }
});
