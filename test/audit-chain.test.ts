// The audit writer: continuity across restarts, group commit with durable-on-resolve appends,
// torn-tail recovery that keeps the evidence, fail-closed writes, and refusal of non-JSON values.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/audit/chain.js';
import { GENESIS_PREV, sha256Hex, type AuditRecord } from '../src/audit/record.js';
import { verifyChain } from '../src/audit/verify.js';
import { isSluiceError } from '../src/errors.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-audit-chain-'));
after(() => rm(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `case-${++counter}`, 'audit.jsonl');

async function readRecords(file: string): Promise<AuditRecord[]> {
  const text = await readFile(file, 'utf8');
  return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditRecord);
}

function hasCode(code: string): (error: unknown) => boolean {
  return (error) => isSluiceError(error) && error.code === code;
}

test('creates the directory and a 0600 file, and starts at seq 1 with a zero prev', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: true });
  const record = await chain.append({ kind: 'decision', agent: 'a1' });
  await chain.close();
  assert.equal(record.seq, 1);
  assert.equal(record.prev, GENESIS_PREV);
  assert.match(record.ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readRecords(file), [record]);
});

test('a reopened chain continues seq and prev from the last record on disk', async () => {
  const file = freshFile();
  const first = await AuditChain.open(file, { fsync: false });
  await first.append({ kind: 'decision', n: 1 });
  const last = await first.append({ kind: 'decision', n: 2 });
  await first.close();
  const second = await AuditChain.open(file, { fsync: false });
  assert.equal(second.recovery, null);
  assert.deepEqual(second.head, { seq: 2, hash: last.hash });
  const next = await second.append({ kind: 'decision', n: 3 });
  await second.close();
  assert.equal(next.seq, 3);
  assert.equal(next.prev, last.hash);
  assert.deepEqual(await verifyChain(file), { ok: true, records: 3, first: { seq: 1, prev: GENESIS_PREV }, head: { seq: 3, hash: next.hash } });
});

test('concurrent appends get consecutive seqs in call order and are on disk when they resolve', async () => {
  const file = freshFile();
  let committed = 0;
  const chain = await AuditChain.open(file, { fsync: true, onCommitted: (records) => (committed += records) });
  const appends = Array.from({ length: 300 }, (_, index) =>
    chain.append({ kind: 'decision', index }).then((record) => {
      // at the moment of resolution the line is in the file and its batch's durable (O_DSYNC) write has returned
      assert.ok(readFileSync(file, 'utf8').includes(`"hash":"${record.hash}"`), `seq ${record.seq} not on disk`);
      assert.ok(committed >= record.seq, `seq ${record.seq} resolved before its batch was flushed`);
      return record;
    }),
  );
  const records = await Promise.all(appends);
  await chain.close();
  assert.deepEqual(records.map((record) => record.seq), records.map((_, index) => index + 1));
  assert.deepEqual(records.map((record) => record.index), records.map((_, index) => index));
  assert.deepEqual(await readRecords(file), records);
  assert.equal((await verifyChain(file)).ok, true);
});

test('close flushes every accepted append and refuses appends made after it', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: true });
  const accepted = Array.from({ length: 20 }, (_, index) => chain.append({ kind: 'decision', index }));
  const closed = chain.close();
  await assert.rejects(chain.append({ kind: 'late' }), hasCode('AUDIT_UNAVAILABLE'));
  await Promise.all([closed, chain.close()]);
  assert.equal((await Promise.all(accepted)).length, 20);
  assert.equal((await readRecords(file)).length, 20);
});

test('appends made while a write is in flight are batched into the next single write', async () => {
  const file = freshFile();
  const batches: number[] = [];
  const chain = await AuditChain.open(file, { fsync: true, onCommitted: (records) => batches.push(records) });
  const first = chain.append({ kind: 'decision', wave: 1 });
  // two microtasks: the drain has started and its write is now waiting on the thread pool
  await Promise.resolve();
  await Promise.resolve();
  const second = Array.from({ length: 50 }, () => chain.append({ kind: 'decision', wave: 2 }));
  await Promise.all([first, ...second]);
  await chain.append({ kind: 'decision', wave: 3 });
  await chain.close();
  assert.deepEqual(batches, [1, 50, 1]);
  assert.equal((await readRecords(file)).length, 52);
});

test('a torn last line without a newline is moved aside, cut off and recorded in the chain', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  await chain.append({ kind: 'decision', n: 1 });
  const good = await chain.append({ kind: 'decision', n: 2 });
  await chain.close();
  const torn = '{"agent":"a9","hash":"0123';
  await appendFile(file, torn);

  const reopened = await AuditChain.open(file, { fsync: true });
  const recovery = reopened.recovery;
  assert.ok(recovery !== null);
  assert.equal(recovery.tornBytes, torn.length);
  assert.equal(recovery.tornSha256, sha256Hex(torn));
  assert.equal(recovery.recordSeq, 3);
  assert.match(recovery.tornFile, /audit\.jsonl\.torn-3-\d{8}T\d{9}Z$/);
  assert.equal(await readFile(recovery.tornFile, 'utf8'), torn);
  const next = await reopened.append({ kind: 'decision', n: 4 });
  await reopened.close();

  const records = await readRecords(file);
  assert.equal(records.length, 4);
  const marker = records[2];
  assert.ok(marker !== undefined);
  assert.equal(marker.kind, 'audit_recovery');
  assert.equal(marker.prev, good.hash);
  assert.equal(marker.torn_bytes, torn.length);
  assert.equal(marker.torn_sha256, sha256Hex(torn));
  assert.equal(marker.torn_file, recovery.tornFile.slice(recovery.tornFile.lastIndexOf('/') + 1));
  assert.equal(next.seq, 4);
  assert.deepEqual(await verifyChain(file), { ok: true, records: 4, first: { seq: 1, prev: GENESIS_PREV }, head: { seq: 4, hash: next.hash } });
});

test('a complete last line with a wrong hash is treated as torn and kept in the sibling file', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  const kept = await chain.append({ kind: 'decision', n: 1 });
  await chain.append({ kind: 'decision', n: 2 });
  await chain.close();
  const lines = (await readFile(file, 'utf8')).split('\n');
  const damaged = `${lines[0]}\n${(lines[1] ?? '').replace('"n":2', '"n":7')}\n`;
  await writeFile(file, damaged);

  const reopened = await AuditChain.open(file, { fsync: false });
  assert.ok(reopened.recovery !== null);
  assert.match(reopened.recovery.reason, /hash_mismatch/);
  assert.equal(await readFile(reopened.recovery.tornFile, 'utf8'), `${(lines[1] ?? '').replace('"n":2', '"n":7')}\n`);
  await reopened.close();
  const records = await readRecords(file);
  assert.deepEqual(records.map((record) => [record.seq, record.kind]), [[1, 'decision'], [2, 'audit_recovery']]);
  assert.equal(records[1]?.prev, kept.hash);
  assert.equal((await verifyChain(file)).ok, true);
});

test('a torn tail spanning several read chunks of a large file is found from the end', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  const big = 'x'.repeat(150_000);
  for (let n = 0; n < 4; n += 1) await chain.append({ kind: 'decision', big });
  await chain.close();
  const torn = `{"big":"${'y'.repeat(100_000)}`;
  await appendFile(file, torn);
  const reopened = await AuditChain.open(file, { fsync: false });
  assert.equal(reopened.recovery?.tornBytes, torn.length);
  assert.equal(reopened.head.seq, 5);
  await reopened.close();
  assert.equal((await verifyChain(file)).ok, true);
});

test('a damaged record before a torn fragment is not mistaken for a torn write: open fails closed', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  for (let n = 1; n <= 3; n += 1) await chain.append({ kind: 'decision', n });
  await chain.close();
  const original = await readFile(file, 'utf8');
  const damaged = original.replace('"n":3', '"n":9') + '{"partial';
  await writeFile(file, damaged);
  await assert.rejects(AuditChain.open(file, { fsync: false }), hasCode('AUDIT_UNAVAILABLE'));
  assert.equal(await readFile(file, 'utf8'), damaged);
  assert.deepEqual((await readdir(join(file, '..'))).filter((name) => name.includes('.torn-')), []);
});

test('a file holding only a torn first record restarts the chain at seq 1 with the recovery record', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  await chain.close();
  await writeFile(file, '{"agent":"a1","allo');
  const reopened = await AuditChain.open(file, { fsync: false });
  assert.equal(reopened.recovery?.recordSeq, 1);
  await reopened.close();
  const records = await readRecords(file);
  assert.deepEqual(records.map((record) => [record.seq, record.kind, record.prev]), [[1, 'audit_recovery', GENESIS_PREV]]);
});

test('megabytes without any newline at the end are refused rather than moved aside blindly', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  await chain.append({ kind: 'decision' });
  await chain.close();
  await appendFile(file, Buffer.alloc(4 * 1024 * 1024, 0x41));
  const size = (await stat(file)).size;
  await assert.rejects(AuditChain.open(file, { fsync: false }), hasCode('AUDIT_UNAVAILABLE'));
  assert.equal((await stat(file)).size, size);
});

test('a failed write rejects every waiting append and all later ones (fail closed)', async () => {
  // /dev/full accepts open() and fails every write with ENOSPC: a real disk-full without a mount.
  const chain = await AuditChain.open('/dev/full', { fsync: false });
  const results = await Promise.allSettled([chain.append({ kind: 'a' }), chain.append({ kind: 'b' })]);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.ok(hasCode('AUDIT_UNAVAILABLE')(result.reason));
  }
  await assert.rejects(chain.append({ kind: 'c' }), hasCode('AUDIT_UNAVAILABLE'));
  await chain.close();
});

test('non-JSON values, reserved keys and a missing kind are refused without breaking the chain', async () => {
  const file = freshFile();
  const chain = await AuditChain.open(file, { fsync: false });
  class Custom {
    readonly value = 1;
  }
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  const bad: unknown[] = [
    { kind: 'x', value: Number.NaN },
    { kind: 'x', value: Number.POSITIVE_INFINITY },
    { kind: 'x', value: undefined },
    { kind: 'x', value: new Date(0) },
    { kind: 'x', value: new Map() },
    { kind: 'x', value: new Custom() },
    { kind: 'x', value: 1n },
    { kind: 'x', value: () => 1 },
    { kind: 'x', value: Symbol('s') },
    { kind: 'x', nested: { list: [1, , 3] } },
    { kind: 'x', circular },
    { kind: 'x', seq: 99 },
    { kind: 'x', hash: 'f'.repeat(64) },
    { kind: '' },
    { note: 'no kind' },
  ];
  for (const fields of bad) {
    await assert.rejects(chain.append(fields as Parameters<AuditChain['append']>[0]), hasCode('AUDIT_RECORD_INVALID'), JSON.stringify(String(fields)));
  }
  const ok = await chain.append({ kind: 'decision', nested: { list: [1, null, 'two', true, { z: 0, a: -0.5 }] } });
  await chain.close();
  assert.equal(ok.seq, 1);
  assert.equal((await verifyChain(file)).ok, true);
});

test('a second writer is refused while the first holds the chain, and a crashed writer\'s lock is taken over', async () => {
  const file = freshFile();
  const first = await AuditChain.open(file, { fsync: false });
  await assert.rejects(AuditChain.open(file, { fsync: false }), hasCode('AUDIT_UNAVAILABLE'));
  await first.append({ kind: 'decision' });
  await first.close();
  const second = await AuditChain.open(file, { fsync: false });
  await second.append({ kind: 'decision' });
  await second.close();
  // A lock naming a process that no longer exists is what a crash leaves behind.
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  await writeFile(`${file}.lock`, `${gone}\n`);
  const third = await AuditChain.open(file, { fsync: false });
  await third.append({ kind: 'decision' });
  await third.close();
  // A container restarts Sluice with the same pid (1) its crashed predecessor had.
  await writeFile(`${file}.lock`, `${process.pid}\n`);
  const fourth = await AuditChain.open(file, { fsync: false });
  await fourth.append({ kind: 'decision' });
  await fourth.close();
  assert.equal((await verifyChain(file)).ok, true);
  assert.deepEqual((await readRecords(file)).map((record) => record.seq), [1, 2, 3, 4]);
});
