// The SIEM stream follows the chain across rotated files: a receiver down while the active file
// rotates several times (and Sluice restarts) gets every record in order once it is back; retention
// meanwhile deletes no file the receiver has not had.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { activeChainFiles, readRecords } from '../src/audit/reader.js';
import type { AuditRecord } from '../src/audit/record.js';
import { rawExchange } from './support/raw-http.js';
import { startHttpReceiver } from './support/siem-receivers.js';
import { startSluice, type AuditLine, type RunningSluice } from './support/sluice.js';
import { until as untilDefault } from './support/until.js';

/** Deliveries wait on retries: generous on a shared, busy machine. */
const until = (condition: () => boolean | Promise<boolean>, what: string): Promise<void> => untilDefault(condition, what, 60_000);

const CONFIG = [
  'audit:',
  '  fsync: false',
  '  rotate: { max_bytes: 4096 }',
  '  retain: { max_total_bytes: 4096 }',
  '  stream:',
  '    type: webhook',
  '    url: URL',
  '    batch_size: 8',
  '    flush_interval_ms: 20',
  '    retry_initial_ms: 20',
  '    retry_max_ms: 200',
].join('\n');

/** Every record of the chain, rotated files first. */
async function chain(running: RunningSluice): Promise<AuditRecord[]> {
  const records: AuditRecord[] = [];
  for await (const read of readRecords(await activeChainFiles(join(running.dir, 'state', 'audit.jsonl')))) records.push(read.record);
  return records;
}

/** CONNECTs the guard refuses (loopback is forbidden): one decision record each. */
async function denials(running: RunningSluice, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const reply = await rawExchange(running.proxyPort, ['CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n']);
    assert.equal(reply.status, 403);
  }
}

async function metric(running: RunningSluice, name: string): Promise<number> {
  const text = await (await fetch(`${running.adminUrl}/metrics`)).text();
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
  assert.ok(value !== undefined, `${name} is exposed`);
  return Number(value);
}

test('rotation and retention while the receiver is down: every record of every file delivered in order, no gap, no restart at seq 1', async () => {
  const receiver = await startHttpReceiver();
  const config = CONFIG.replace('URL', `${receiver.url}/ingest`);
  let running = await startSluice({ config });
  const delivered = (): AuditLine[] => receiver.accepted.flatMap((request) => request.body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditLine));
  try {
    await until(() => delivered().length > 0, 'the start record delivered');
    receiver.down = true;
    await denials(running, 10);
    // Restarted while the receiver is down: the cursor is found again by scanning the rotated files.
    await running.stop();
    running = await startSluice({ dir: running.dir, config });
    for (let round = 0; (await activeChainFiles(join(running.stateDir, 'audit.jsonl'))).length < 5; round += 1) {
      assert.ok(round < 20, 'the active file rotates by size');
      await denials(running, 5);
    }
    await until(async () => (await metric(running, 'sluice_audit_stream_errors_total')) >= 2, 'deliveries failing');
    receiver.down = false;
    const records = await chain(running);
    const last = records.at(-1);
    assert.ok(last !== undefined);
    await until(() => delivered().some((record) => record['seq'] === last.seq), `seq ${last.seq} delivered`);
    await until(async () => (await metric(running, 'sluice_audit_stream_lag_records')) === 0, 'no lag');
    const written = (await chain(running)).filter((record) => record.seq <= last.seq);
    const received = delivered().filter((record) => Number(record['seq']) <= last.seq);
    // A 503 batch is never accepted, so each record was accepted exactly once, in chain order from seq 1.
    assert.deepEqual(received.map((record) => record['seq']), written.map((record) => record.seq));
    assert.deepEqual(received.map((record) => record['hash']), written.map((record) => record.hash));
    assert.equal(written[0]?.seq, 1);
    assert.ok(received.filter((record) => record.kind === 'checkpoint' && record['trigger'] === 'rotation').length >= 4, 'the rotation checkpoints of several files');
    assert.equal(running.logs.filter((line) => /resending the chain from seq 1/.test(String(line['msg']))).length, 0, 'the stream never restarted');
    assert.ok(running.logs.some((line) => /retention keeps a rotated file the SIEM stream has not delivered/.test(String(line['msg']))), 'the held deletion is logged');
    // Delivered now: the next rotation lets retention delete the oldest files.
    const oldest = join(running.stateDir, 'audit-000000000001.jsonl');
    for (let round = 0; (await activeChainFiles(join(running.stateDir, 'audit.jsonl'))).some((file) => file.path === oldest); round += 1) {
      assert.ok(round < 20, 'retention deletes the delivered files');
      await denials(running, 5);
    }
  } finally {
    await running.close();
    await receiver.close();
  }
});
