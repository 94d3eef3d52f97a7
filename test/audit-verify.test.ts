// The audit verifier: a clean chain passes, and each kind of tampering is reported at the right
// seq and line with a reason that names it, in-process and through the real `sluice` CLI.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditChain } from '../src/audit/chain.js';
import { canonicalJson } from '../src/audit/canonical.js';
import { sha256Hex, type AuditRecord } from '../src/audit/record.js';
import { verifyChain, type BreakReason, type VerifyResult } from '../src/audit/verify.js';
import { auditCommand } from '../src/cli/audit.js';
import { runCommand, runSluice, type CliResult } from './support/cli.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-audit-verify-'));
after(() => rm(root, { recursive: true, force: true }));

let clean: string[] = [];
let counter = 0;

before(async () => {
  const file = join(root, 'clean.jsonl');
  const chain = await AuditChain.open(file, { fsync: false });
  for (let n = 1; n <= 6; n += 1) await chain.append({ kind: 'decision', agent: `a${n}`, allowed: n % 2 === 0 });
  await chain.close();
  clean = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
});

/** Writes `lines` (each followed by '\n' unless `torn`) to a fresh file and verifies it. */
async function verifyLines(lines: readonly string[], options: { torn?: string; continuation?: boolean } = {}): Promise<VerifyResult> {
  const file = join(root, `case-${++counter}.jsonl`);
  await writeFile(file, lines.map((line) => `${line}\n`).join('') + (options.torn ?? ''));
  return verifyChain(file, { continuation: options.continuation === true });
}

function line(seq: number): string {
  const found = clean[seq - 1];
  assert.ok(found !== undefined, `no clean line for seq ${seq}`);
  return found;
}

/** Re-seals an edited record the way a forger who knows the format would. */
function forge(seq: number, edit: (record: Record<string, unknown>) => void): string {
  const record: Record<string, unknown> = JSON.parse(line(seq)) as AuditRecord;
  edit(record);
  delete record['hash'];
  record['hash'] = sha256Hex(canonicalJson(record));
  return canonicalJson(record);
}

function assertBreak(result: VerifyResult, seq: number, lineNumber: number, reason: BreakReason, records = seq - 1): void {
  assert.equal(result.ok, false, 'tampering went unnoticed');
  if (result.ok) return;
  assert.deepEqual({ seq: result.seq, line: result.line, reason: result.reason, records: result.records }, { seq, line: lineNumber, reason, records });
}

test('a clean chain verifies and reports its head', async () => {
  const result = await verifyLines(clean);
  const last = JSON.parse(line(6)) as AuditRecord;
  assert.deepEqual(result, { ok: true, records: 6, first: { seq: 1, prev: '0'.repeat(64) }, head: { seq: 6, hash: last.hash } });
});

test('an empty file is an empty, intact chain', async () => {
  assert.deepEqual(await verifyLines([]), { ok: true, records: 0, first: null, head: null });
});

test('detects an edited field as a hash mismatch at that record', async () => {
  const edited = clean.map((text, index) => (index === 2 ? text.replace('"agent":"a3"', '"agent":"zz"') : text));
  assertBreak(await verifyLines(edited), 3, 3, 'hash_mismatch');
});

test('detects an edited and re-hashed record as a broken prev link at the next record', async () => {
  const edited = clean.map((text, index) => (index === 2 ? forge(3, (record) => { record['allowed'] = true; }) : text));
  assertBreak(await verifyLines(edited), 4, 4, 'prev_mismatch');
});

test('detects whitespace or key-order edits that keep the parsed content', async () => {
  const edited = clean.map((text, index) => (index === 1 ? text.replace('"agent":', '"agent": ') : text));
  assertBreak(await verifyLines(edited), 2, 2, 'non_canonical');
});

test('detects a removed middle record as a seq gap at the missing seq', async () => {
  assertBreak(await verifyLines(clean.filter((_, index) => index !== 3)), 4, 4, 'seq_gap');
});

test('a removed last record leaves a valid chain whose head no longer matches an anchored head', async () => {
  const anchored = (JSON.parse(line(6)) as AuditRecord).hash;
  const result = await verifyLines(clean.slice(0, -1));
  assert.equal(result.ok, true);
  assert.ok(result.ok);
  assert.equal(result.records, 5);
  assert.notEqual(result.head?.hash, anchored);
});

test('an anchored head detects records cut off the end, and an anchored record that changed', async () => {
  const head = JSON.parse(line(6)) as AuditRecord;
  const anchor = { seq: head.seq, hash: head.hash };
  const file = join(root, `anchored-${++counter}.jsonl`);
  await writeFile(file, clean.map((text) => `${text}\n`).join(''));
  assert.equal((await verifyChain(file, { anchor })).ok, true);
  await writeFile(file, clean.slice(0, 4).map((text) => `${text}\n`).join(''));
  assertBreak(await verifyChain(file, { anchor }), 5, 5, 'truncated', 4);
  const rewritten = [...clean.slice(0, 5), forge(6, (record) => { record['allowed'] = false; })];
  await writeFile(file, rewritten.map((text) => `${text}\n`).join(''));
  assertBreak(await verifyChain(file, { anchor }), 6, 6, 'anchor_mismatch', 5);
});

test('detects a removed first record as a chain that does not start at seq 1, unless a continuation', async () => {
  assertBreak(await verifyLines(clean.slice(1)), 1, 1, 'bad_start', 0);
  const continued = await verifyLines(clean.slice(1), { continuation: true });
  assert.ok(continued.ok);
  assert.deepEqual(continued.first, { seq: 2, prev: (JSON.parse(line(1)) as AuditRecord).hash });
});

test('detects two swapped records as out of order, adjacent or not', async () => {
  const adjacent = [line(1), line(3), line(2), line(4), line(5), line(6)];
  assertBreak(await verifyLines(adjacent), 2, 2, 'seq_out_of_order');
  const apart = [line(1), line(5), line(3), line(4), line(2), line(6)];
  assertBreak(await verifyLines(apart), 2, 2, 'seq_out_of_order');
});

test('detects an inserted forged record with a correct self-hash at the first original after it', async () => {
  const forged = forge(3, (record) => { record['agent'] = 'forged'; record['prev'] = (JSON.parse(line(2)) as AuditRecord).hash; });
  const inserted = [line(1), line(2), forged, line(3), line(4), line(5), line(6)];
  assertBreak(await verifyLines(inserted), 4, 4, 'seq_out_of_order', 3);
});

test('detects a changed prev: a hash mismatch, or a broken link once re-hashed', async () => {
  const otherHash = (JSON.parse(line(1)) as AuditRecord).hash;
  const raw = clean.map((text, index) => (index === 4 ? text.replace(/"prev":"[0-9a-f]{64}"/, `"prev":"${otherHash}"`) : text));
  assertBreak(await verifyLines(raw), 5, 5, 'hash_mismatch');
  const resealed = clean.map((text, index) => (index === 4 ? forge(5, (record) => { record['prev'] = otherHash; }) : text));
  assertBreak(await verifyLines(resealed), 5, 5, 'prev_mismatch');
});

test('detects a torn last line without a newline', async () => {
  assertBreak(await verifyLines(clean, { torn: '{"agent":"a7","al' }), 7, 7, 'torn_tail');
  assertBreak(await verifyLines(clean.slice(0, 5), { torn: line(6) }), 6, 6, 'torn_tail');
});

test('detects an unparseable line and a record missing its chain fields', async () => {
  assertBreak(await verifyLines([line(1), line(2), 'not json', line(4)]), 3, 3, 'unparseable');
  assertBreak(await verifyLines([line(1), '']), 2, 2, 'unparseable');
  assertBreak(await verifyLines([line(1), '{"kind":"decision","seq":2}']), 2, 2, 'malformed');
});

test('the audit command reports usage errors with exit 2 and prints the break for scripts', async () => {
  const audit = (...args: string[]): ReturnType<typeof runCommand> => runCommand(auditCommand, args);
  const usage = [await audit(), await audit('verify'), await audit('verify', '--bogus', 'x'), await audit('verify', '--window', '0', 'x'), await audit('verify', '--pubkey', 'not-a-key', 'x')];
  assert.deepEqual(usage.map((result) => result.code), [2, 2, 2, 2, 2]);
  assert.match(usage.map((result) => result.stderr).join(''), /missing FILE[\s\S]*unknown option --bogus[\s\S]*--window expects a positive number[\s\S]*--pubkey expects a base64 Ed25519 public key/);
  const file = join(root, 'command.jsonl');
  await writeFile(file, [line(1), line(3)].map((text) => `${text}\n`).join(''));
  const gap = await audit('verify', file);
  assert.equal(gap.code, 1);
  assert.equal(gap.stdout, 'broken at seq 2 (line 2): removed record (seq gap): seq 3 follows seq 1: 1 record(s) missing\n');
  const head = JSON.parse(line(3)) as AuditRecord;
  const anchored = await audit('verify', '--continuation', `--anchor=${head.seq}:${head.hash.toUpperCase()}`, file);
  assert.equal(anchored.code, 1);
  assert.match(anchored.stdout, /^broken at seq 2 \(line 2\): removed record/);
  await writeFile(file, [line(1), line(2)].map((text) => `${text}\n`).join(''));
  const cut = await audit('verify', '--anchor', `${head.seq}:${head.hash}`, file);
  assert.equal(cut.code, 1);
  assert.match(cut.stdout, /^broken at seq 3 \(line 3\): records cut off the end/);
  const nonsense = await audit('verify', '--anchor', 'nonsense', file);
  assert.equal(nonsense.code, 2);
  assert.match(nonsense.stderr, /--anchor expects SEQ:SHA256/);
});

function cli(...args: string[]): Promise<CliResult> {
  return runSluice(['audit', ...args]);
}

test('sluice audit verify exits 0 on a clean chain, 1 with the break, 2 on a missing file', async () => {
  const good = join(root, 'cli-good.jsonl');
  await writeFile(good, clean.map((text) => `${text}\n`).join(''));
  const ok = await cli('verify', good);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: 6 records verified\nhead: seq 6 sha256 [0-9a-f]{64}\n$/);

  const bad = join(root, 'cli-bad.jsonl');
  await writeFile(bad, clean.map((text) => `${text.replace('"agent":"a3"', '"agent":"zz"')}\n`).join(''));
  const broken = await cli('verify', bad);
  assert.equal(broken.code, 1);
  assert.match(broken.stdout, /^broken at seq 3 \(line 3\): edited record/);

  const json = await cli('verify', '--json', bad);
  assert.equal(json.code, 1);
  assert.deepEqual((JSON.parse(json.stdout) as { reason: string; seq: number }).reason, 'hash_mismatch');

  const missing = await cli('verify', join(root, 'absent.jsonl'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*absent\.jsonl/);
  assert.equal((await cli('frobnicate')).code, 2);
});
