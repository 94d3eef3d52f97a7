// The audit chain on a disk that really fills up (a tmpfs of a few hundred KiB in a private mount
// namespace): appends and proxy decisions are refused with AUDIT_UNAVAILABLE, retries back off,
// and once space is back the chain cuts the failed write's remains, records an audit_recovery and
// carries on, and `sluice audit verify` accepts the file.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditChain } from '../src/audit/chain.js';
import { verifyChain } from '../src/audit/verify.js';
import { isSluiceError } from '../src/errors.js';
import { curl } from './support/curl.js';
import { ManualTimer } from './support/manual-timer.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startHttpOrigin } from './support/origins.js';
import { runSluice } from './support/cli.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { mountSmallDisk } from './support/small-disk.js';
import { until } from './support/until.js';

type Line = Record<string, unknown> & { readonly seq: number; readonly kind: string };

const unavailable = (error: unknown): boolean => isSluiceError(error) && error.code === 'AUDIT_UNAVAILABLE';

async function lines(file: string): Promise<Line[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Line);
}

if (insideLoopbackNamespace(import.meta.url)) {
  const root = await mkdtemp(join(tmpdir(), 'sluice-full-disk-'));
  after(() => rm(root, { recursive: true, force: true }));

  test('a full disk refuses appends until a retry can write, then the chain cuts the torn write and resumes with audit_recovery', async () => {
    await mkdir(join(root, 'chain'));
    const disk = await mountSmallDisk(join(root, 'chain'), 256);
    let chain: AuditChain | undefined;
    try {
      const file = join(disk.dir, 'audit.jsonl');
      const timer = new ManualTimer();
      const errors: unknown[] = [];
      const opened = await AuditChain.open(file, { fsync: true, onWriteError: (error) => errors.push(error), retry: { schedule: timer.schedule } });
      chain = opened;
      await opened.append({ kind: 'decision', n: 1 });
      // End the file 100 bytes short of a page boundary: once the disk is full, the next write lands
      // 100 bytes as a torn line, and so does a recovery record, which is longer than that.
      const before = (await stat(file)).size;
      await opened.append({ kind: 'pad', pad: '' });
      const padLine = (await stat(file)).size - before;
      const target = 4096 * Math.ceil((before + padLine + 400) / 4096) - 100;
      await opened.append({ kind: 'pad', pad: 'x'.repeat(target - before - 2 * padLine) });
      assert.equal((await stat(file)).size % 4096, 3996);
      const durable = opened.head;
      const durableSize = (await stat(file)).size;
      await disk.fill();

      const refused = await Promise.allSettled([opened.append({ kind: 'decision', big: 'x'.repeat(6000) }), opened.append({ kind: 'decision', n: 3 })]);
      assert.deepEqual(refused.map((result) => result.status === 'rejected' && unavailable(result.reason)), [true, true]);
      const torn = (await stat(file)).size - durableSize;
      assert.equal(torn, 100, 'the part of the failed batch that fitted reached the file');
      assert.equal((await verifyChain(file)).ok, false, 'the file ends in a torn line while the disk is full');
      assert.ok(opened.failure !== null && /ENOSPC/.test(opened.failure.error.message));
      assert.deepEqual(opened.head, durable, 'refused records are not part of the chain');
      await assert.rejects(opened.append({ kind: 'decision', n: 4 }), unavailable);

      assert.equal(timer.fire(), 1);
      await until(() => timer.waiting === 1, 'the failed retry to schedule the next one');
      assert.deepEqual(timer.delays, [1000, 2000], 'retries back off');
      assert.equal(errors.length, 2, 'the write and the retry each reported');
      assert.notEqual(opened.failure, null);

      await disk.free();
      assert.equal(timer.fire(), 1);
      await until(() => opened.failure === null, 'the retry to succeed');
      const next = await opened.append({ kind: 'decision', n: 5 });
      await opened.close();

      const records = await lines(file);
      const recovery = records.at(-2);
      assert.equal(recovery?.kind, 'audit_recovery');
      assert.equal(recovery.seq, durable.seq + 1);
      assert.equal(recovery.prev, durable.hash);
      assert.equal(recovery.refused_appends, 3);
      assert.equal(recovery.truncated_bytes, torn);
      assert.match(String(recovery.reason), /ENOSPC/);
      assert.match(String(recovery.failed_at), /^\d{4}-\d{2}-\d{2}T/);
      assert.equal(records.at(-1)?.n, 5);
      assert.deepEqual(await verifyChain(file), { ok: true, records: records.length, first: { seq: 1, prev: '0'.repeat(64) }, head: { seq: next.seq, hash: next.hash } });
    } finally {
      await chain?.close();
      await disk.unmount();
    }
  });

  test('the proxy refuses every decision with AUDIT_UNAVAILABLE while its audit disk is full, is not ready, and resumes once space is back', async () => {
    const origin = await startHttpOrigin();
    const dir = join(root, 'proxy');
    await mkdir(join(dir, 'state'), { recursive: true });
    const disk = await mountSmallDisk(join(dir, 'state'), 384);
    const timer = new ManualTimer();
    const sluice = await startSluice({
      dir,
      config: `mode: strict\n${ALLOW_LOOPBACK}`,
      rules: { 'origin.yaml': `rules:\n  - { id: origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}] }\n` },
      auditRetry: timer.schedule,
    });
    const url = `http://127.0.0.1:${origin.port}/`;
    const ready = async (): Promise<number> => (await fetch(`${sluice.adminUrl}/readyz`)).status;
    try {
      assert.equal((await curl(['-x', sluice.proxyUrl, url])).status, 200);
      await disk.fill();
      // What still fits in the file's last page is written; the first record that does not fit fails the chain.
      let refusal = await curl(['-x', sluice.proxyUrl, url]);
      for (let tries = 0; refusal.status === 200 && tries < 40; tries++) refusal = await curl(['-x', sluice.proxyUrl, url]);
      assert.equal(refusal.status, 503);
      assert.match(refusal.headers, /reason=audit_unavailable/);
      const again = await curl(['-x', sluice.proxyUrl, url]);
      assert.equal(again.status, 503, 'every later decision is refused too');
      assert.equal(await ready(), 503);
      assert.match(await (await fetch(`${sluice.adminUrl}/metrics`)).text(), /^sluice_audit_write_errors_total [1-9]/m);

      await disk.free();
      timer.fire();
      await until(async () => (await ready()) === 200, 'the chain to recover');
      assert.equal((await curl(['-x', sluice.proxyUrl, url])).status, 200);
      await sluice.stop();

      const file = join(sluice.stateDir, 'audit.jsonl');
      const records = await lines(file);
      const recovery = records.find((record) => record.kind === 'audit_recovery');
      assert.ok(recovery !== undefined);
      assert.ok(Number(recovery.refused_appends) >= 2, 'the refused decisions are counted');
      assert.deepEqual(records.slice(-2).map((record) => [record.kind, record['trigger']]), [['stop', undefined], ['checkpoint', 'shutdown']]);
      const verify = await runSluice(['audit', 'verify', file]);
      assert.match(verify.stdout, new RegExp(`^ok: ${records.length} records verified\n`));
      assert.equal(verify.code, 0);
    } finally {
      await sluice.stop();
      await disk.unmount();
      await origin.close();
    }
  });
}
