// The policy DNS server acts only on what is on record: a refusal's answer leaves once its record
// is durable, and while the audit disk is full (a small tmpfs in a private mount namespace) every
// query is answered SERVFAIL, until the chain recovers.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { AuditChain } from '../src/audit/chain.js';
import { verifyChain } from '../src/audit/verify.js';
import { startPolicyDns } from '../src/ingress/dns/index.js';
import { Metrics } from '../src/obs/metrics.js';
import { startDnsServer } from './support/dns-server.js';
import { ManualTimer } from './support/manual-timer.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { policyDnsConfig, policyDnsSetup } from './support/policy-dns-config.js';
import { mountSmallDisk } from './support/small-disk.js';
import { until } from './support/until.js';

if (insideLoopbackNamespace(import.meta.url)) {
  test('a DNS refusal is answered only once its record is durable, and every query gets SERVFAIL while the audit disk is full', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-dns-audit-'));
    const disk = await mountSmallDisk(dir, 256);
    const upstream = await startDnsServer({ 'docs.example.test': { A: ['93.184.216.34'] } });
    const file = join(dir, 'audit.jsonl');
    const retries = new ManualTimer();
    const summaries = new ManualTimer();
    const audit = await AuditChain.open(file, { fsync: true, retry: { schedule: retries.schedule } });
    const metrics = new Metrics({ processMetrics: false });
    const dns = await startPolicyDns({ ...policyDnsSetup(policyDnsConfig(upstream.server)), audit, metrics, summarySchedule: summaries.schedule });
    const socket = createSocket('udp4');
    let id = 0;
    /** The reply's rcode, and whether a complete audit record named the query when the reply arrived. */
    const ask = async (name: string): Promise<{ rcode: string; onRecord: boolean }> => {
      socket.send(dnsPacket.encode({ type: 'query', id: ++id, questions: [{ type: 'A', name }] }), dns.port, '127.0.0.1');
      const [reply] = (await once(socket, 'message', { signal: AbortSignal.timeout(3000) })) as [Buffer];
      // Only complete lines: a write the full disk cut short leaves an unterminated fragment until the retry trims it.
      const onRecord = readFileSync(file, 'utf8').split('\n').slice(0, -1).some((line) => line.includes(`"name":"${name}"`));
      return { rcode: (dnsPacket.decode(reply) as { rcode?: string }).rcode ?? '', onRecord };
    };
    try {
      assert.deepEqual(await ask('refused-0.example.test'), { rcode: 'REFUSED', onRecord: true });
      assert.equal((await ask('docs.example.test')).rcode, 'NOERROR');

      await disk.fill();
      // Records that still fit in the file's last page go through; the first that does not fails the chain.
      let answer = await ask('refused-1.example.test');
      for (let index = 2; answer.rcode === 'REFUSED' && index < 40; index++) {
        assert.equal(answer.onRecord, true);
        answer = await ask(`refused-${index}.example.test`);
      }
      assert.deepEqual(answer, { rcode: 'SERVFAIL', onRecord: false });
      assert.equal((await ask('docs.example.test')).rcode, 'SERVFAIL', 'no answer while nothing can be recorded');
      const counted = (await metrics.dnsQueries.get()).values.find((value) => value.labels.outcome === 'audit_unavailable');
      assert.equal(counted?.value, 2);
      // The summary due now cannot be written either: its counts wait for the next one.
      assert.equal(summaries.fire(), 1);
      await until(() => summaries.waiting === 1, 'the refused summary to be kept for the next interval');

      await disk.free();
      retries.fire();
      await until(() => audit.failure === null, 'the chain to recover');
      assert.equal((await ask('docs.example.test')).rcode, 'NOERROR');
      assert.equal(summaries.fire(), 1);
      await dns.close();
      await audit.close();
      const records = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const written = records.filter((record) => record.kind === 'dns_summary');
      assert.equal(written.length, 1);
      // Answered queries are counted too (one before the disk filled, one after it recovered).
      assert.deepEqual(written[0]?.counts, [
        { agent: 'tester', peer: '127.0.0.1', outcome: 'answered', count: 2 },
        { agent: 'tester', peer: '127.0.0.1', outcome: 'audit_unavailable', count: 2 },
      ]);
      assert.equal((await verifyChain(file)).ok, true);
    } finally {
      socket.close();
      await dns.close().catch(() => undefined);
      await audit.close();
      await upstream.stop();
      await disk.unmount();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
