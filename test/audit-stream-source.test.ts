// The stream's reader hands out durable records after a cursor, in order, and refuses to skip:
// a cursor the chain does not hold, a damaged record or a missing one is an error, never a gap.
import assert from 'node:assert/strict';
import { appendFile, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditChain } from '../src/audit/chain.js';
import { rotatedName } from '../src/audit/reader.js';
import type { AuditRecord, ChainHead } from '../src/audit/record.js';
import { START_OF_CHAIN } from '../src/audit/stream/cursor.js';
import { ChainAuditSource } from '../src/audit/stream/source.js';
import { isOperatorError } from '../src/errors.js';
import { freshDir } from './support/cli.js';

async function writeChain(file: string, count: number, continueFrom?: ChainHead): Promise<AuditRecord[]> {
  const chain = await AuditChain.open(file, { fsync: false, ...(continueFrom === undefined ? {} : { continueFrom }) });
  const records = await Promise.all(Array.from({ length: count }, (_, index) => chain.append({ kind: 'reload', outcome: 'accepted', rules: index, rule_files: [] })));
  await chain.close();
  return records;
}

test('reads in batches from the cursor up to the durable seq, and resumes where the last read ended', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  const records = await writeChain(file, 10);
  const source = new ChainAuditSource(file);
  const first = await source.read(START_OF_CHAIN, 10, 4);
  assert.deepEqual(first.map((record) => record.seq), [1, 2, 3, 4]);
  const last = first.at(-1);
  assert.ok(last !== undefined);
  const second = await source.read({ seq: last.seq, hash: last.hash }, 6, 100);
  assert.deepEqual(second.map((record) => record.seq), [5, 6], 'nothing beyond the durable seq');
  const fresh = new ChainAuditSource(file);
  assert.deepEqual((await fresh.read({ seq: 6, hash: records[5]?.hash ?? '' }, 10, 100)).map((record) => record.seq), [7, 8, 9, 10], 'a new reader (a restart) finds the cursor by scanning');
  assert.deepEqual(await source.read({ seq: 10, hash: records[9]?.hash ?? '' }, 10, 100), []);
});

test('a cursor whose hash the chain does not hold is refused: the file was replaced', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  await writeChain(file, 3);
  await assert.rejects(new ChainAuditSource(file).read({ seq: 2, hash: 'f'.repeat(64) }, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_CURSOR'));
});

test('a damaged record, or a record missing before the durable seq, stops the read', async (t) => {
  const dir = await freshDir(t);
  const damaged = join(dir, 'damaged.jsonl');
  await writeChain(damaged, 3);
  const text = await readFile(damaged, 'utf8');
  await writeFile(damaged, text.replace('"rules":1', '"rules":7'));
  await assert.rejects(new ChainAuditSource(damaged).read(START_OF_CHAIN, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /hash_mismatch/.test(error.message));

  const short = join(dir, 'short.jsonl');
  const written = await writeChain(short, 2);
  const shortSource = new ChainAuditSource(short);
  assert.deepEqual((await shortSource.read(START_OF_CHAIN, 3, 10)).map((record) => record.seq), [1, 2], 'what is there is delivered first');
  const second = written[1];
  assert.ok(second !== undefined);
  await assert.rejects(shortSource.read({ seq: 2, hash: second.hash }, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /ends before seq 3/.test(error.message));

  const gap = join(dir, 'gap.jsonl');
  const lines = (await readFile(damaged, 'utf8')).split('\n');
  await writeFile(gap, `${(await readFile(short, 'utf8')).split('\n')[0]}\n`);
  await appendFile(gap, `${lines[2]}\n`);
  await assert.rejects(new ChainAuditSource(gap).read(START_OF_CHAIN, 3, 10), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /expected seq 2 next, found 3/.test(error.message));
});

/** Rotates `file` as the trail does: renamed after its first seq, the next file chaining to its last record. */
async function rotate(file: string, records: readonly AuditRecord[], count: number): Promise<AuditRecord[]> {
  const first = records[0];
  const last = records.at(-1);
  assert.ok(first !== undefined && last !== undefined);
  await rename(file, rotatedName(file, first.seq));
  return writeChain(file, count, { seq: last.seq, hash: last.hash });
}

function headOf(record: AuditRecord | undefined): ChainHead {
  assert.ok(record !== undefined);
  return { seq: record.seq, hash: record.hash };
}

test('reads on across rotated files: a cursor at the last record of a rotated file continues in the next one', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  const one = await writeChain(file, 3);
  const two = await rotate(file, one, 3);
  const three = await rotate(file, two, 2);
  const source = new ChainAuditSource(file);
  assert.deepEqual((await source.read(START_OF_CHAIN, 8, 100)).map((record) => record.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual((await new ChainAuditSource(file).read(headOf(one[2]), 8, 2)).map((record) => record.seq), [4, 5], 'a restart at the last record of the first file');
  assert.deepEqual((await new ChainAuditSource(file).read(headOf(two[2]), 8, 100)).map((record) => record.seq), [7, 8]);
  assert.deepEqual(await source.read(headOf(three[1]), 8, 100), []);
});

test('a rotation between two reads: the reader finds the renamed file and goes on into the new active one', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  const one = await writeChain(file, 4);
  const source = new ChainAuditSource(file);
  assert.deepEqual((await source.read(START_OF_CHAIN, 4, 2)).map((record) => record.seq), [1, 2]);
  const two = await rotate(file, one, 3);
  assert.deepEqual((await source.read(headOf(one[1]), 7, 100)).map((record) => record.seq), [3, 4, 5, 6, 7], 'no restart at seq 1, no gap');
  const three = await rotate(file, two, 1);
  assert.deepEqual((await source.read(headOf(two[2]), 8, 100)).map((record) => record.seq), [8]);
  assert.equal(three[0]?.seq, 8);
});

test('a rotated file deleted before it was read is a gap the reader refuses; a cursor inside it names nothing, one at its end goes on', async (t) => {
  const file = join(await freshDir(t), 'audit.jsonl');
  const one = await writeChain(file, 2);
  const two = await rotate(file, one, 2);
  await rotate(file, two, 2);
  await unlink(rotatedName(file, 3));
  const source = new ChainAuditSource(file);
  assert.deepEqual((await source.read(START_OF_CHAIN, 6, 100)).map((record) => record.seq), [1, 2], 'what precedes the gap');
  await assert.rejects(source.read(headOf(one[1]), 6, 100), (error) => isOperatorError(error, 'AUDIT_STREAM_SOURCE') && /starts at seq 5; records in between are missing/.test(error.message));
  await assert.rejects(new ChainAuditSource(file).read(headOf(two[0]), 6, 100), (error) => isOperatorError(error, 'AUDIT_STREAM_CURSOR'));
  // Delivered up to the last record of the deleted file: the next record's prev proves the cursor.
  assert.deepEqual((await new ChainAuditSource(file).read(headOf(two[1]), 6, 100)).map((record) => record.seq), [5, 6]);
  await assert.rejects(new ChainAuditSource(file).read({ seq: 4, hash: 'e'.repeat(64) }, 6, 100), (error) => isOperatorError(error, 'AUDIT_STREAM_CURSOR'), 'a next record chained to another hash refuses the cursor');
  await unlink(rotatedName(file, 1));
  assert.deepEqual((await new ChainAuditSource(file).read(START_OF_CHAIN, 6, 100)).map((record) => record.seq), [5, 6], 'from seq 0: the first record still on disk');
});
