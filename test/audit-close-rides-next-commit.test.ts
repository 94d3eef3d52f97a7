// A record appended `with_next_commit` (the close record) starts no commit of its own: it joins
// the next urgent append's batch, or its timer's, or close(); chain order and verification hold.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/audit/chain.js';
import { verifyChain } from '../src/audit/verify.js';
import { ManualTimer } from './support/manual-timer.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-audit-deferred-'));
after(() => rm(root, { recursive: true, force: true }));
let counter = 0;
const freshFile = (): string => join(root, `case-${++counter}`, 'audit.jsonl');

async function kindsOnDisk(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { kind: string }).kind);
}

test('a deferred record is written with the next urgent append, in one commit and in seq order', async () => {
  const file = freshFile();
  const timer = new ManualTimer();
  const commits: number[] = [];
  const chain = await AuditChain.open(file, { fsync: true, deferred: { schedule: timer.schedule }, onCommitted: (records) => commits.push(records) });
  let closeDurable = false;
  const close = chain.append({ kind: 'close', n: 1 }, 'with_next_commit').then((record) => {
    closeDurable = true;
    return record;
  });
  // Give a wrongly started drain every chance to run: the file must stay empty.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(await kindsOnDisk(file), []);
  assert.equal(closeDurable, false);
  assert.equal(timer.waiting, 1, 'the deferred record waits on its timer');
  const decision = await chain.append({ kind: 'decision', n: 2 });
  assert.equal(closeDurable, true, 'the deferred record was durable with the decision');
  assert.equal((await close).seq, 1);
  assert.equal(decision.seq, 2);
  assert.deepEqual(commits, [2]);
  assert.equal(timer.waiting, 0, 'the commit cancelled the timer');
  await chain.close();
  assert.deepEqual(await kindsOnDisk(file), ['close', 'decision']);
  assert.equal((await verifyChain(file)).ok, true);
});

test('left alone, deferred records are written when their timer fires, all in one commit', async () => {
  const file = freshFile();
  const timer = new ManualTimer();
  const commits: number[] = [];
  const chain = await AuditChain.open(file, { fsync: false, deferred: { schedule: timer.schedule, maxDelayMs: 150 }, onCommitted: (records) => commits.push(records) });
  const appended = [chain.append({ kind: 'close', n: 1 }, 'with_next_commit'), chain.append({ kind: 'close', n: 2 }, 'with_next_commit')];
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(await kindsOnDisk(file), []);
  assert.deepEqual(timer.delays, [150], 'one timer for the waiting records, with the configured delay');
  assert.equal(timer.fire(), 1);
  const records = await Promise.all(appended);
  assert.deepEqual(
    records.map((record) => record.seq),
    [1, 2],
  );
  assert.deepEqual(commits, [2]);
  assert.deepEqual(await kindsOnDisk(file), ['close', 'close']);
  await chain.close();
});

test('deferred records appended while a commit is in flight wait for the next urgent one, not a commit of their own', async () => {
  const file = freshFile();
  const timer = new ManualTimer();
  const commits: number[] = [];
  const chain = await AuditChain.open(file, { fsync: true, deferred: { schedule: timer.schedule }, onCommitted: (records) => commits.push(records) });
  const first = chain.append({ kind: 'decision', n: 1 });
  // Let the first commit start, then defer a record behind it.
  await Promise.resolve();
  await Promise.resolve();
  const deferred = chain.append({ kind: 'close', n: 1 }, 'with_next_commit');
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(commits, [1], 'the in-flight commit did not run on into a commit for the deferred record');
  assert.equal(timer.waiting, 1);
  await chain.append({ kind: 'decision', n: 2 });
  await deferred;
  assert.deepEqual(commits, [1, 2]);
  await chain.close();
  assert.deepEqual(await kindsOnDisk(file), ['decision', 'close', 'decision']);
});

test('close() writes deferred records before closing the file', async () => {
  const file = freshFile();
  const timer = new ManualTimer();
  const chain = await AuditChain.open(file, { fsync: true, deferred: { schedule: timer.schedule } });
  const deferred = chain.append({ kind: 'close', n: 1 }, 'with_next_commit');
  await chain.close();
  assert.equal((await deferred).seq, 1);
  assert.deepEqual(await kindsOnDisk(file), ['close']);
  assert.equal(timer.waiting, 0, 'closing cancelled the timer');
  assert.equal(timer.fire(), 0);
});
