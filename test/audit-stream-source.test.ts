// The stream's reader hands out durable records after a cursor, in order, and refuses to skip:
// a cursor the chain does not hold, a damaged record or a missing one is an error, never a gap.
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditChain } from '../src/audit/chain.js';
import type { AuditRecord } from '../src/audit/record.js';
import { START_OF_CHAIN } from '../src/audit/stream/cursor.js';
import { FileAuditSource } from '../src/audit/stream/source.js';
import { isOperatorError } from '../src/errors.js';
import { freshDir } from './support/cli.js';

async function writeChain(file: string, count: number): Promise<AuditRecord[]> {
  const chain = await AuditChain.open(file, { fsync: false });
  const records = await Promise.all(Array.from({ length: count }, (_, index) => chain.append({ kind: 'reload', outcome: 'accepted', rules: index, rule_files: [] })));
  await chain.close();
  return records;
}

test('reads in batches from the cursor up to the durable seq, and resumes where the last read ended', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  const records = await writeChain(file, 10);
  const source = new FileAuditSource(file);
  const first = await source.read(START_OF_CHAIN, 10, 4);
  assert.deepEqual(first.map((record) => record.seq), [1, 2, 3, 4]);
  const last = first.at(-1);
  assert.ok(last !== undefined);
  const second = await source.read({ seq: last.seq, hash: last.hash }, 6, 100);
  assert.deepEqual(second.map((record) => record.seq), [5, 6], 'nothing beyond the durable seq');
  const fresh = new FileAuditSource(file);
  assert.deepEqual((await fresh.read({ seq: 6, hash: records[5]?.hash ?? '' }, 10, 100)).map((record) => record.seq), [7, 8, 9, 10], 'a new reader (a restart) finds the cursor by scanning');
  assert.deepEqual(await source.read({ seq: 10, hash: records[9]?.hash ?? '' }, 10, 100), []);
});

test('a cursor whose hash the chain does not hold is refused: the file was replaced', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  await writeChain(file, 3);
  await assert.rejects(new FileAuditSource(file).read({ seq: 2, hash: 'f'.repeat(64) }, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_CURSOR'));
});

test('a damaged record, or a record missing before the durable seq, stops the read', async (t) => {
  const dir = await freshDir(t);
  const damaged = join(dir, 'damaged.jsonl');
  await writeChain(damaged, 3);
  const text = await readFile(damaged, 'utf8');
  await writeFile(damaged, text.replace('"rules":1', '"rules":7'));
  await assert.rejects(new FileAuditSource(damaged).read(START_OF_CHAIN, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /hash_mismatch/.test(error.message));

  const short = join(dir, 'short.jsonl');
  await writeChain(short, 2);
  await assert.rejects(new FileAuditSource(short).read(START_OF_CHAIN, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /ends before seq 3/.test(error.message));

  const gap = join(dir, 'gap.jsonl');
  const lines = (await readFile(damaged, 'utf8')).split('\n');
  await writeFile(gap, `${(await readFile(short, 'utf8')).split('\n')[0]}\n`);
  await appendFile(gap, `${lines[2]}\n`);
  await assert.rejects(new FileAuditSource(gap).read(START_OF_CHAIN, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /expected seq 2 next, found 3/.test(error.message));
});
