// Rotation and retention: the chain runs on across rotated files and restarts, `verify DIR` proves
// it, and retention deletes only the oldest files, each deletion recorded and signed first.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rename, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReloadEntry } from '../src/audit/kinds.js';
import { activeChainFiles, chainFilesIn, readRecords } from '../src/audit/reader.js';
import { loadSigningKeys } from '../src/audit/signing-key.js';
import { AuditTrail, type AuditTrailOptions } from '../src/audit/trail.js';
import { verifyChain, type VerifyResult } from '../src/audit/verify.js';
import { runSluice } from './support/cli.js';
import { ManualTimer } from './support/manual-timer.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-rotation-'));
after(() => rm(root, { recursive: true, force: true }));
let dirs = 0;

type Options = Partial<Pick<AuditTrailOptions, 'rotate' | 'retain' | 'now' | 'undeliveredFrom' | 'onRetentionHeld'>>;

async function openTrail(dir: string, options: Options = {}): Promise<AuditTrail> {
  return AuditTrail.open(join(dir, 'audit.jsonl'), { fsync: false }, {
    keys: await loadSigningKeys(dir),
    checkpoint: { everyRecords: 1000, everySeconds: 60 },
    rotate: options.rotate ?? { maxBytes: 4096, daily: false },
    retain: options.retain ?? { maxAgeDays: null, maxTotalBytes: null },
    schedule: new ManualTimer().schedule,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.undeliveredFrom === undefined ? {} : { undeliveredFrom: options.undeliveredFrom }),
    ...(options.onRetentionHeld === undefined ? {} : { onRetentionHeld: options.onRetentionHeld }),
  });
}

/** A record of about 500 bytes, so a few fill a 4 KiB file. */
const bulky = (n: number): ReloadEntry => ({ kind: 'reload', outcome: 'rejected', errors: [`${n}:${'x'.repeat(480)}`] });

async function records(file: string): Promise<Record<string, unknown>[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function verifyDir(dir: string, pubkey: string): Promise<VerifyResult> {
  return verifyChain((await chainFilesIn(dir)).map((file) => file.path), { pubkeys: [pubkey] });
}

async function filled(count: number, options: Options = {}): Promise<{ dir: string; pubkey: string }> {
  const dir = await mkdtemp(join(root, `run-${++dirs}-`));
  const trail = await openTrail(dir, options);
  for (let n = 1; n <= count; n += 1) await trail.append(bulky(n));
  const pubkey = trail.publicKey;
  await trail.close();
  return { dir, pubkey };
}

test('rotation by size: each file ends with a rotation checkpoint, the next one chains to it, and the directory verifies', async () => {
  const { dir, pubkey } = await filled(30);
  const files = await chainFilesIn(dir);
  const rotated = files.filter((file) => /audit-\d{12}\.jsonl$/.test(file.path));
  assert.ok(rotated.length >= 3, `rotated into ${files.length} files`);
  assert.equal(files.at(-1)?.path, join(dir, 'audit.jsonl'), 'the active file holds the newest records');
  for (let index = 0; index < files.length - 1; index += 1) {
    const current = await records(files[index]?.path ?? '');
    const next = await records(files[index + 1]?.path ?? '');
    assert.equal(current.at(-1)?.['trigger'], 'rotation', `${files[index]?.path} ends with its rotation checkpoint`);
    assert.equal(next[0]?.['prev'], current.at(-1)?.['hash'], 'the first record of a new file chains to the last of the previous');
    assert.equal(next[0]?.['seq'], Number(current.at(-1)?.['seq']) + 1);
    assert.ok((files[index]?.bytes ?? 0) < 4096 + 1024, 'a file rotates soon after reaching max_bytes');
  }
  assert.equal(rotated[0]?.path, join(dir, 'audit-000000000001.jsonl'), 'a rotated file is named for its first seq');
  const result = await verifyDir(dir, pubkey);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.records, (await Promise.all(files.map((file) => records(file.path)))).flat().length);

  const cli = await runSluice(['audit', 'verify', '--pubkey', pubkey, dir]);
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /\(shutdown\)/);
});

test('a restart continues the chain in the active file, or from the last rotated file when there is no active one', async () => {
  const { dir, pubkey } = await filled(12);
  const reopened = await openTrail(dir);
  await reopened.append(bulky(13));
  await reopened.close();
  assert.ok((await verifyDir(dir, pubkey)).ok);
  // A crash right after a rotation leaves no active file: the next start chains to the rotated one.
  const active = join(dir, 'audit.jsonl');
  const last = await records(active);
  await rename(active, join(dir, `audit-${String(last[0]?.['seq']).padStart(12, '0')}.jsonl`));
  const resumed = await openTrail(dir);
  const first = await resumed.append(bulky(14));
  await resumed.close();
  assert.equal(first.prev, last.at(-1)?.['hash']);
  assert.ok((await verifyDir(dir, pubkey)).ok);
});

test('rotation at a new UTC day', async () => {
  const dir = await mkdtemp(join(root, `day-${++dirs}-`));
  let now = new Date('2026-03-01T23:59:59.000Z');
  const trail = await openTrail(dir, { rotate: { maxBytes: null, daily: true }, now: () => now });
  await trail.append(bulky(1));
  await trail.append(bulky(2));
  now = new Date('2026-03-02T00:00:01.000Z');
  const third = await trail.append(bulky(3));
  const pubkey = trail.publicKey;
  await trail.close();
  const names = (await readdir(dir)).filter((name) => name.endsWith('.jsonl')).sort();
  assert.deepEqual(names, ['audit-000000000001.jsonl', 'audit.jsonl']);
  assert.deepEqual((await records(join(dir, 'audit-000000000001.jsonl'))).map((record) => record['trigger'] ?? record['kind']), ['reload', 'reload', 'rotation']);
  assert.equal((await records(join(dir, 'audit.jsonl')))[0]?.['seq'], third.seq);
  assert.ok((await verifyDir(dir, pubkey)).ok);
});

test('verify DIR names a deleted, truncated or missing file', async () => {
  const { dir, pubkey } = await filled(30);
  const files = (await chainFilesIn(dir)).map((file) => file.path);
  const middle = files[1] ?? '';
  const kept = await readFile(middle);
  await unlink(middle);
  const gap = await verifyDir(dir, pubkey);
  assert.ok(!gap.ok && gap.reason === 'seq_gap', JSON.stringify(gap));
  await writeFile(middle, kept);
  await unlink(files[0] ?? '');
  const headless = await verifyDir(dir, pubkey);
  assert.ok(!headless.ok && headless.reason === 'bad_start', JSON.stringify(headless));
  await rm(dir, { recursive: true });
});

test('the files after a rotation deleted, the active one included: the chain ends at a rotation with nothing after it', async () => {
  const { dir, pubkey } = await filled(30);
  await unlink(join(dir, 'audit.jsonl'));
  const result = await verifyDir(dir, pubkey);
  assert.ok(!result.ok && result.reason === 'unsigned_tail', JSON.stringify(result));
  const cli = await runSluice(['audit', 'verify', '--pubkey', pubkey, dir]);
  assert.equal(cli.code, 1);
  assert.match(cli.stdout, /the file that continues it is missing/);
});

test('retention by total size deletes the oldest files only, each deletion an audit_retention record signed before the unlink', async () => {
  const { dir, pubkey } = await filled(40, { retain: { maxAgeDays: null, maxTotalBytes: 12_000 } });
  const files = await chainFilesIn(dir);
  assert.ok(files.reduce((sum, file) => sum + file.bytes, 0) <= 12_000 + 5_200, 'the total stays near the limit');
  assert.notEqual(files[0]?.path, join(dir, 'audit-000000000001.jsonl'), 'the oldest file went');
  const all = (await Promise.all(files.map((file) => records(file.path)))).flat();
  const deletions = all.filter((record) => record['kind'] === 'audit_retention');
  assert.ok(deletions.length > 0);
  // Records of earlier deletions may have gone with later ones; the newest names the file just before what remains.
  const newest = deletions.at(-1);
  assert.equal(Number(newest?.['last_seq']) + 1, files[0]?.firstSeq);
  assert.equal(newest?.['file'], `audit-${String(newest?.['first_seq']).padStart(12, '0')}.jsonl`);
  assert.ok(deletions.every((record) => record['reason'] === 'max_total_bytes'));
  const after = all[all.indexOf(deletions.at(-1) ?? {}) + 1];
  assert.equal(after?.['trigger'], 'retention', 'the deletions are checkpointed at once');
  // What remains starts after seq 1 and still verifies: the retention record accounts for the rest.
  const result = await verifyDir(dir, pubkey);
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.first?.seq, files[0]?.firstSeq);
});

test('retention keeps every rotated file holding a record the SIEM stream has not delivered, and says so', async () => {
  let undeliveredFrom = 10;
  const held: [string, number][] = [];
  const { dir } = await filled(40, { retain: { maxAgeDays: null, maxTotalBytes: 4096 }, undeliveredFrom: () => undeliveredFrom, onRetentionHeld: (file, from) => held.push([file, from]) });
  const files = await chainFilesIn(dir);
  const [oldest, second] = files;
  assert.ok(oldest?.firstSeq != null && second?.firstSeq != null);
  assert.ok(oldest.firstSeq > 1, 'files wholly delivered were deleted');
  assert.ok(oldest.firstSeq <= 10 && second.firstSeq > 10, 'the oldest file left is the one holding seq 10, the first undelivered');
  assert.ok(held.length > 0 && held.every(([, from]) => from === 10), 'each held deletion is reported');
  // Once the stream has delivered everything, the next start deletes down to the limit.
  undeliveredFrom = Number.POSITIVE_INFINITY;
  const trail = await openTrail(dir, { retain: { maxAgeDays: null, maxTotalBytes: 4096 }, undeliveredFrom: () => undeliveredFrom });
  await trail.close();
  assert.ok((await chainFilesIn(dir)).length < files.length);
});

test('retention by age deletes rotated files older than max_age_days at start', async () => {
  const { dir, pubkey } = await filled(30);
  const files = await chainFilesIn(dir);
  const old = new Date('2026-01-01T00:00:00Z');
  for (const file of files.slice(0, 2)) await utimes(file.path, old, old);
  const trail = await openTrail(dir, { retain: { maxAgeDays: 30, maxTotalBytes: null }, now: () => new Date('2026-03-01T00:00:00Z') });
  await trail.close();
  const remaining = (await chainFilesIn(dir)).map((file) => file.path);
  assert.deepEqual(remaining, files.slice(2).map((file) => file.path));
  const reasons = (await records(join(dir, 'audit.jsonl'))).filter((record) => record['kind'] === 'audit_retention').map((record) => [record['file'], record['reason']]);
  assert.deepEqual(reasons, files.slice(0, 2).map((file) => [file.path.slice(dir.length + 1), 'max_age']));
  assert.ok((await verifyDir(dir, pubkey)).ok);
});

test('readRecords yields the chain in order from a seq across rotated files, skipping files that end before it', async () => {
  const { dir } = await filled(30);
  const files = await activeChainFiles(join(dir, 'audit.jsonl'));
  const third = files[2];
  assert.ok(third?.firstSeq !== null && third?.firstSeq !== undefined, 'at least three files');
  const from = third.firstSeq + 1;
  // Damage an earlier file: a reader starting after it must not even open it.
  await writeFile(files[0]?.path ?? '', 'damaged\n');
  const read = [];
  for await (const item of readRecords(files, from)) read.push(item);
  assert.equal(read[0]?.record.seq, from);
  assert.equal(read[0]?.file, third.path);
  assert.deepEqual(read.map((item) => item.record.seq), read.map((_, index) => from + index), 'in order, none missing');
  assert.equal(read.at(-1)?.record['trigger'], 'shutdown');
  await assert.rejects(async () => {
    for await (const _ of readRecords(files, 1)) { /* reading from seq 1 reaches the damage */ }
  }, /audit-000000000001\.jsonl:1: unparseable/);
});

test('a crash during the first write to a fresh active file: the torn bytes go aside and the chain continues the rotated file', async () => {
  const { dir, pubkey } = await filled(12);
  const active = join(dir, 'audit.jsonl');
  const last = await records(active);
  await rename(active, join(dir, `audit-${String(last[0]?.['seq']).padStart(12, '0')}.jsonl`));
  await writeFile(active, '{"kind":"reload","outcome":"rej');
  const trail = await openTrail(dir);
  const recovery = trail.recovery;
  await trail.close();
  assert.ok(recovery !== null, 'the torn first write was moved aside');
  const resumed = await records(active);
  assert.equal(resumed[0]?.['kind'], 'audit_recovery');
  assert.equal(resumed[0]?.['prev'], last.at(-1)?.['hash'], 'it chains to the last record of the rotated file');
  assert.ok((await verifyDir(dir, pubkey)).ok);
});
