// Signed checkpoints: Sluice signs its chain head with a key in the state directory, and
// `verify --pubkey` names every way of tampering, including a rewrite by someone without the key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createPublicKey, sign } from 'node:crypto';
import { appendFile, chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson } from '../src/audit/canonical.js';
import { checkpointEntry, checkpointMessage } from '../src/audit/checkpoint.js';
import { sealRecord, sha256Hex, type AuditRecord } from '../src/audit/record.js';
import { loadSigningKeys, readSigningKey, SIGNING_KEY_FILE } from '../src/audit/signing-key.js';
import { AuditTrail, type AuditTrailOptions } from '../src/audit/trail.js';
import { verifyChain, type BreakReason, type VerifyResult } from '../src/audit/verify.js';
import { runSluice } from './support/cli.js';
import { curl } from './support/curl.js';
import { spawnSluice } from './support/sluice-process.js';
import { ManualTimer } from './support/manual-timer.js';

const root = await mkdtemp(join(tmpdir(), 'sluice-checkpoints-'));
after(() => rm(root, { recursive: true, force: true }));
let dirs = 0;

const WINDOW = 3;

async function openTrail(stateDir: string, timer = new ManualTimer(), overrides: Partial<AuditTrailOptions> = {}): Promise<AuditTrail> {
  return AuditTrail.open(join(stateDir, 'audit.jsonl'), { fsync: false }, {
    keys: await loadSigningKeys(stateDir),
    checkpoint: { everyRecords: WINDOW, everySeconds: 60 },
    rotate: { maxBytes: null, daily: false },
    retain: { maxAgeDays: null, maxTotalBytes: null },
    schedule: timer.schedule,
    ...overrides,
  });
}

async function freshDir(): Promise<string> {
  dirs += 1;
  return mkdtemp(join(root, `state-${dirs}-`));
}

/** A clean run: 7 records, closed: a checkpoint after every 3 records (itself counted) and at shutdown. */
async function cleanRun(): Promise<{ dir: string; lines: string[]; pubkey: string }> {
  const dir = await freshDir();
  const trail = await openTrail(dir);
  for (let n = 1; n <= 7; n += 1) await trail.append({ kind: 'stop' });
  const pubkey = trail.publicKey;
  await trail.close();
  const lines = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').slice(0, -1);
  return { dir, lines, pubkey };
}

const parse = (line: string): Record<string, unknown> => JSON.parse(line) as Record<string, unknown>;

async function verifyLines(lines: readonly string[], pubkeys: readonly string[], live = false): Promise<VerifyResult> {
  const file = join(root, `case-${++dirs}.jsonl`);
  await writeFile(file, lines.map((line) => `${line}\n`).join(''));
  return verifyChain(file, { pubkeys, window: WINDOW, live });
}

function assertBreak(result: VerifyResult, reason: BreakReason, seq?: number): void {
  assert.equal(result.ok, false, `tampering went unnoticed (expected ${reason})`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.detail);
  if (seq !== undefined) assert.equal(result.seq, seq, result.detail);
}

/** Re-seals records from `from` on, each chained to the one before: what a forger without the key does. */
function reseal(lines: readonly string[], from: number, edit: (record: Record<string, unknown>, index: number) => void = () => undefined): string[] {
  const out = [...lines];
  let prev = from === 0 ? '0'.repeat(64) : String(parse(out[from - 1] ?? '{}')['hash']);
  for (let index = from; index < out.length; index += 1) {
    const record = parse(out[index] ?? '{}');
    edit(record, index);
    record['prev'] = prev;
    delete record['hash'];
    record['hash'] = sha256Hex(canonicalJson(record));
    prev = String(record['hash']);
    out[index] = canonicalJson(record);
  }
  return out;
}

test('the signing key is created 0600 at first start, `sluice audit pubkey` prints it, and a clean run verifies with it', async () => {
  const { dir, lines, pubkey } = await cleanRun();
  assert.equal((await stat(join(dir, SIGNING_KEY_FILE))).mode & 0o777, 0o600);
  const printed = await runSluice(['audit', 'pubkey', '--state-dir', dir]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, `${pubkey}\n`);
  const kinds = lines.map((line) => [parse(line)['kind'], parse(line)['trigger'] ?? null]);
  assert.deepEqual(kinds, [
    ['stop', null], ['stop', null], ['stop', null], ['checkpoint', 'records'],
    ['stop', null], ['stop', null], ['stop', null], ['checkpoint', 'records'],
    ['stop', null], ['checkpoint', 'shutdown'],
  ]);
  const result = await verifyChain(join(dir, 'audit.jsonl'), { pubkeys: [pubkey], window: WINDOW });
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.signed?.trigger, 'shutdown');
  assert.equal(result.signed?.seq, 10);
  assert.equal(result.unsigned, 0);

  const keyFile = join(dir, 'pubkey.txt');
  await writeFile(keyFile, `${pubkey}\n`);
  const cli = await runSluice(['audit', 'verify', '--pubkey', keyFile, '--window', String(WINDOW), join(dir, 'audit.jsonl')]);
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, new RegExp(`^ok: 10 records verified\\nhead: seq 10 sha256 [0-9a-f]{64}\\nsigned: seq 10 at \\S+ \\(shutdown\\) by ${pubkey.replace(/[+/]/g, '\\$&')}\\n$`));
});

test('the signing key must not be readable by others', async () => {
  const dir = await freshDir();
  await (await openTrail(dir)).close();
  await chmod(join(dir, SIGNING_KEY_FILE), 0o644);
  await assert.rejects(loadSigningKeys(dir), (error: Error & { code?: string }) => error.code === 'AUDIT_KEY_INVALID' && /mode 644/.test(error.message));
  const printed = await runSluice(['audit', 'pubkey', '--state-dir', dir]);
  assert.equal(printed.code, 1);
  assert.match(printed.stderr, /lets other users read the signing key.*\[AUDIT_KEY_INVALID\]/);
});

test('an interval checkpoint signs the records waiting when its timer fires, and only then', async () => {
  const dir = await freshDir();
  const timer = new ManualTimer();
  const trail = await openTrail(dir, timer);
  assert.equal(timer.delays.at(-1), 60_000);
  timer.fire();
  await trail.append({ kind: 'stop' });
  timer.fire();
  await trail.close();
  const kinds = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').slice(0, -1).map((line) => parse(line)['trigger'] ?? parse(line)['kind']);
  // Nothing waited at the first tick: no checkpoint for an idle log.
  assert.deepEqual(kinds, ['stop', 'interval', 'shutdown']);
});

test('with the key, every way of editing, removing, reordering or inserting records is named', async () => {
  const { lines, pubkey } = await cleanRun();
  const edited = lines.map((line, index) => (index === 4 ? line.replace('"kind":"stop"', '"kind":"stoq"') : line));
  assertBreak(await verifyLines(edited, [pubkey]), 'hash_mismatch', 5);
  assertBreak(await verifyLines(lines.filter((_, index) => index !== 4), [pubkey]), 'seq_gap', 5);
  assertBreak(await verifyLines([lines[0], lines[2], lines[1], ...lines.slice(3)].map(String), [pubkey]), 'seq_out_of_order', 2);
  // A forged seq 6 chained correctly after seq 5: the original seq 6 then comes out of order.
  const forged = reseal([...lines.slice(0, 5), lines[4] ?? ''], 5, (record) => {
    record['seq'] = 6;
  }).slice(5);
  const inserted = [...lines.slice(0, 5), ...forged, ...lines.slice(5)];
  assertBreak(await verifyLines(inserted, [pubkey]), 'seq_out_of_order', 7);
});

test('a chain rewritten end to end without the key fails on its checkpoints, however the forger treats them', async () => {
  const { lines, pubkey } = await cleanRun();
  // Kept as they were: each checkpoint now signs a head the rewritten chain no longer has.
  const kept = reseal(lines, 1, (record, index) => {
    if (index === 1) record['note'] = 'forged';
  });
  assertBreak(await verifyLines(kept, [pubkey]), 'checkpoint_head_mismatch', 4);
  // Re-signed with the forger's own key: an unknown key.
  const forger = generateKeyPairSync('ed25519');
  const forgerKey = createPublicKey(forger.privateKey).export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
  const resigned = reseal(lines, 1, (record) => {
    if (record['kind'] !== 'checkpoint') return;
    record['key'] = forgerKey;
    record['head_seq'] = Number(record['seq']) - 1;
  });
  // head_hash must follow the reseal, so re-sign in a second pass with the final prev of each checkpoint.
  const fixed = [...resigned];
  for (let index = 0; index < fixed.length; index += 1) {
    const record = parse(fixed[index] ?? '{}');
    if (record['kind'] !== 'checkpoint') continue;
    const prevHash = String(parse(fixed[index - 1] ?? '{}')['hash']);
    const message = checkpointMessage({ trigger: record['trigger'] as 'records', head_seq: Number(record['head_seq']), head_hash: prevHash, time: String(record['time']), key: forgerKey });
    const patched = reseal(fixed, index, (target, at) => {
      if (at !== index) return;
      target['head_hash'] = prevHash;
      target['signature'] = sign(null, message, forger.privateKey).toString('base64');
    });
    fixed.splice(0, fixed.length, ...patched);
  }
  assertBreak(await verifyLines(fixed, [pubkey]), 'checkpoint_untrusted_key', 4);
  assert.ok((await verifyLines(fixed, [forgerKey])).ok, 'the forgery is consistent: only the trusted key tells it apart');
  // Stripped out: too many records go unsigned.
  const stripped = reseal(lines.filter((line) => parse(line)['kind'] !== 'checkpoint'), 1, (record, index) => {
    record['seq'] = index + 1;
  });
  assertBreak(await verifyLines(stripped, [pubkey]), 'unsigned_records', 4);
  // A signature altered (and the chain resealed around it): it no longer verifies.
  const altered = reseal(lines, 3, (record, index) => {
    if (index === 3) record['signature'] = Buffer.alloc(64, 7).toString('base64');
  });
  assertBreak(await verifyLines(altered, [pubkey]), 'checkpoint_bad_signature', 4);
  // Without --pubkey the rewritten chains are internally consistent: only the key catches them.
  assert.ok((await verifyChain(join(root, `case-${dirs}.jsonl`))).ok);
});

test('a tail cut off beyond the last checkpoint is reported, and a cut at a checkpoint too', async () => {
  const { lines, pubkey } = await cleanRun();
  // Cut right after the last records checkpoint (seq 8): the shutdown checkpoint is gone.
  assertBreak(await verifyLines(lines.slice(0, 8), [pubkey]), 'unsigned_tail', 9);
  // Cut inside the window: records after the last checkpoint, no shutdown.
  assertBreak(await verifyLines(lines.slice(0, 9), [pubkey]), 'unsigned_tail', 10);
  // Relabelling the last surviving checkpoint as the shutdown one breaks its signature.
  const relabelled = reseal(lines.slice(0, 8), 7, (record) => {
    record['trigger'] = 'shutdown';
  });
  assertBreak(await verifyLines(relabelled, [pubkey]), 'checkpoint_bad_signature', 8);
  // While Sluice still writes (--live), up to a window of unsigned records may end the chain.
  assert.ok((await verifyLines(lines.slice(0, 9), [pubkey], true)).ok);
});

test('a crash between records and their checkpoint: the next start signs the tail first', async () => {
  const { lines, pubkey, dir } = await cleanRun();
  // The crash: two records written after the shutdown checkpoint, never signed (appended the way the
  // writer would have, each chained to the one before).
  const crashed = reseal([...lines, lines[0] ?? '', lines[0] ?? ''], lines.length, (record, index) => {
    record['seq'] = index + 1;
  });
  await writeFile(join(dir, 'audit.jsonl'), crashed.map((line) => `${line}\n`).join(''));
  assertBreak(await verifyChain(join(dir, 'audit.jsonl'), { pubkeys: [pubkey], window: WINDOW }), 'unsigned_tail', 13);
  const trail = await openTrail(dir);
  await trail.close();
  const after = (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').slice(0, -1).map(parse);
  assert.deepEqual(after.slice(-2).map((record) => [record['seq'], record['trigger']]), [[13, 'start'], [14, 'shutdown']]);
  assert.ok((await verifyChain(join(dir, 'audit.jsonl'), { pubkeys: [pubkey], window: WINDOW })).ok);
});

test('key rotation: the old key announces the new one, verification follows it, and the old key signs nothing after', async () => {
  const { dir, pubkey: oldKey } = await cleanRun();
  const staged = await runSluice(['audit', 'rotate-key', '--state-dir', dir]);
  assert.equal(staged.code, 0, staged.stderr);
  const newKey = staged.stdout.trim();
  const trail = await openTrail(dir);
  assert.equal(trail.publicKey, newKey);
  await trail.append({ kind: 'stop' });
  await trail.close();
  assert.equal((await runSluice(['audit', 'pubkey', '--state-dir', dir])).stdout.trim(), newKey);
  const file = join(dir, 'audit.jsonl');
  const records = (await readFile(file, 'utf8')).split('\n').slice(0, -1).map(parse);
  const announcement = records.find((record) => record['trigger'] === 'key_rotation');
  assert.equal(announcement?.['key'], oldKey);
  assert.equal(announcement?.['next_key'], newKey);
  assert.equal(records.at(-1)?.['key'], newKey);
  assert.ok((await verifyChain(file, { pubkeys: [oldKey], window: WINDOW })).ok, 'the old key is enough to follow the rotation');
  assertBreak(await verifyChain(file, { pubkeys: [newKey], window: WINDOW }), 'checkpoint_untrusted_key', 4);
  // The retired key stays on disk; a checkpoint it signs after the announcement is not accepted.
  const retiredFile = (await readdir(dir)).find((name) => name.startsWith(`${SIGNING_KEY_FILE}.`) && name.endsWith('.old'));
  assert.ok(retiredFile !== undefined, 'the retired key is kept on disk');
  const retired = await readSigningKey(join(dir, retiredFile));
  assert.equal(retired.publicKey, oldKey);
  const last = records.at(-1) as AuditRecord;
  const late = sealRecord(last.seq + 1, new Date().toISOString(), last.hash, checkpointEntry(retired, last, 'shutdown', new Date()));
  await appendFile(file, late.line);
  assertBreak(await verifyChain(file, { pubkeys: [oldKey], window: WINDOW }), 'checkpoint_untrusted_key', last.seq + 1);
});

test('a real Sluice killed with SIGKILL leaves an unsigned tail that --live accepts, and its next start signs it', async (t) => {
  const dir = await freshDir();
  await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
  const config = join(dir, 'sluice.yaml');
  await writeFile(config, 'listen:\n  proxy: "127.0.0.1:0"\n  admin: "127.0.0.1:0"\nstate_dir: state\nrules: []\nblocklists: blocklists.yaml\n');
  const auditFile = join(dir, 'state', 'audit.jsonl');
  const first = spawnSluice(['run', '--config', config]);
  t.after(() => first.stop('SIGKILL', 1_000));
  const started = await first.waitForLog('sluice started', 120_000);
  const port = (started['proxy'] as { port: number }).port;
  // A denied request (loopback is forbidden): its decision record is durable before the 403 is sent.
  assert.equal((await curl(['-x', `http://127.0.0.1:${port}`, 'http://127.0.0.1:1/killed'])).status, 403);
  assert.deepEqual(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
  const pubkey = (await runSluice(['audit', 'pubkey', '--state-dir', join(dir, 'state')])).stdout.trim();
  const crashed = await runSluice(['audit', 'verify', '--pubkey', pubkey, auditFile]);
  assert.equal(crashed.code, 1, crashed.stdout);
  assert.match(crashed.stdout, /records after the last checkpoint/);
  assert.equal((await runSluice(['audit', 'verify', '--live', '--pubkey', pubkey, auditFile])).code, 0);

  const second = spawnSluice(['run', '--config', config]);
  t.after(() => second.stop('SIGKILL', 1_000));
  await second.waitForLog('sluice started', 120_000);
  assert.deepEqual(await second.stop('SIGTERM'), { code: 0, signal: null });
  const records = (await readFile(auditFile, 'utf8')).split('\n').slice(0, -1).map(parse);
  const restart = records.findIndex((record) => record['trigger'] === 'start');
  assert.ok(restart > 0, 'a start checkpoint signs what the killed run left');
  assert.equal(records[restart - 1]?.['kind'], 'decision');
  assert.equal(records[restart + 1]?.['kind'], 'start');
  const verified = await runSluice(['audit', 'verify', '--pubkey', pubkey, auditFile]);
  assert.equal(verified.code, 0, verified.stdout);
  assert.match(verified.stdout, /\(shutdown\)/);
});
