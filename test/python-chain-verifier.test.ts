// examples/verify-audit-chain.py verifies chains written by Sluice's AuditChain without Sluice:
// it agrees with `sluice audit verify` on every tamper, follows a chain across files, and its
// Ed25519 checkpoint check accepts node:crypto signatures and refuses tampered ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditChain } from '../src/audit/chain.js';
import { chainFilesIn } from '../src/audit/reader.js';
import { createSigningKey, loadSigningKeys, NEXT_SIGNING_KEY_FILE } from '../src/audit/signing-key.js';
import { AuditTrail } from '../src/audit/trail.js';
import { sealRecord, type AuditRecord } from '../src/audit/record.js';
import { verifyChain, type VerifyOptions } from '../src/audit/verify.js';
import { ManualTimer } from './support/manual-timer.js';

const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const SCRIPT = join(EXAMPLES, 'verify-audit-chain.py');
const root = await mkdtemp(join(tmpdir(), 'sluice-py-verifier-'));
after(() => rm(root, { recursive: true, force: true }));

let lines: string[] = [];
let head = { seq: 0, hash: '' };
let counter = 0;

before(async () => {
  const chain = await AuditChain.open(join(root, 'genuine', 'audit.jsonl'), { fsync: false });
  // Values chosen where a naive re-implementation goes wrong: ES number forms, lone surrogates,
  // U+2028, control characters, and keys whose UTF-16 order differs from code point order.
  await chain.append({ kind: 'decision', agent: 'builder-7', numbers: [0, -0, 1.5, 1e21, 1e-7, 0.000001234, 5e-324, 0.1 + 0.2, 2 ** 53, 123456789012345680000, -1e-300] });
  await chain.append({ kind: 'decision', text: 'é 😀 \u2028 \ud800 "quoted" back\\slash \n\t\u0001 \u007f', '\uff61': 'U+FF61', '😀': 'U+1F600', '': null });
  await chain.append({ kind: 'decision', nested: { z: [{ b: true, a: false }], a: { '10': 1, '9': 2 } } });
  for (let index = 0; index < 6; index += 1) await chain.append({ kind: 'close', request_id: `r-${index}`, bytes_up: index * 1000 });
  head = chain.head;
  await chain.close();
  lines = (await readFile(join(root, 'genuine', 'audit.jsonl'), 'utf8')).split('\n').slice(0, -1);
});

interface PyResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function python(args: readonly string[]): Promise<PyResult> {
  return new Promise((resolvePromise) => {
    execFile('python3', args, { timeout: 60_000 }, (error, stdout, stderr) => resolvePromise({ code: error === null ? 0 : Number(error.code), stdout, stderr }));
  });
}

async function verifyWithPython(args: readonly string[]): Promise<Record<string, unknown>> {
  const result = await python([SCRIPT, '--json', ...args]);
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

async function writeLines(content: readonly string[], name = 'audit.jsonl', terminated = true): Promise<string> {
  counter += 1;
  const file = join(root, `case-${counter}`, name);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content.join('\n') + (terminated && content.length > 0 ? '\n' : ''));
  return file;
}

/** Both verifiers on one file: Python must name the same break as Sluice, at the same place. */
async function agree(file: string, options: VerifyOptions = {}, args: readonly string[] = []): Promise<Record<string, unknown>> {
  const py = await verifyWithPython([...args, file]);
  const node = await verifyChain(file, options);
  if (node.ok) {
    assert.equal(py['ok'], true, JSON.stringify(py));
    assert.equal(py['records'], node.records);
    assert.deepEqual(py['head'], node.head);
  } else {
    assert.deepEqual([py['reason'], py['seq'], py['line'], py['records']], [node.reason, node.seq, node.line, node.records], `${node.detail} / ${String(py['detail'])}`);
    assert.equal(py['file'], file);
  }
  return py;
}

function resealed(line: string, change: Record<string, unknown>): string {
  const { seq, ts, prev, hash: _hash, ...fields } = JSON.parse(line) as AuditRecord;
  return sealRecord(seq, ts, prev, { ...fields, ...change } as AuditRecord).line.slice(0, -1);
}

const at = (index: number): string => lines[index] ?? assert.fail(`no line ${index + 1}`);

test('an intact chain written by AuditChain verifies, with the same head Sluice reports', async () => {
  const py = await agree(join(root, 'genuine', 'audit.jsonl'));
  assert.equal(py['records'], 9);
  assert.deepEqual(py['head'], head);
});

test('each tamper is named with the reason, line and seq Sluice gives', async () => {
  const cases: [string, string[], string, number][] = [
    ['edited', lines.map((line, index) => (index === 4 ? line.replace('"bytes_up":1000', '"bytes_up":9000') : line)), 'hash_mismatch', 5],
    ['edited and re-hashed', lines.map((line, index) => (index === 3 ? resealed(line, { bytes_up: 9000 }) : line)), 'prev_mismatch', 5],
    ['deleted', lines.filter((_, index) => index !== 3), 'seq_gap', 4],
    ['reordered', [...lines.slice(0, 3), at(4), at(3), ...lines.slice(5)], 'seq_out_of_order', 4],
    ['inserted copy', [...lines.slice(0, 4), at(3), ...lines.slice(4)], 'seq_out_of_order', 5],
    ['inserted forgery', [...lines.slice(0, 3), resealed(at(3), { request_id: 'forged' }), ...lines.slice(3)], 'seq_out_of_order', 5],
    ['whitespace', lines.map((line, index) => (index === 1 ? line.replace('"kind":"decision"', '"kind": "decision"') : line)), 'non_canonical', 2],
    ['key order', lines.map((line, index) => (index === 4 ? `{${line.slice(1, -1).split(',').reverse().join(',')}}` : line)), 'non_canonical', 5],
    ['number form', lines.map((line, index) => (index === 0 ? line.replace('1e+21', '1000000000000000000000') : line)), 'non_canonical', 1],
    ['head cut off', lines.slice(1), 'bad_start', 1],
    ['garbage line', [...lines.slice(0, 2), 'not json', ...lines.slice(2)], 'unparseable', 3],
    ['overflowing number', lines.map((line, index) => (index === 5 ? line.replace('"bytes_up":2000', '"bytes_up":1e400') : line)), 'malformed', 6],
  ];
  for (const [name, content, reason, line] of cases) {
    assert.notDeepEqual(content, lines, `${name} changes the file`);
    const py = await agree(await writeLines(content));
    assert.deepEqual([py['reason'], py['line']], [reason, line], name);
  }
  const torn = await agree(await writeLines(lines, 'audit.jsonl', false));
  assert.deepEqual([torn['reason'], torn['line'], torn['seq']], ['torn_tail', 9, 9]);
});

test('anchors and continuations behave as in sluice audit verify', async () => {
  const file = await writeLines(lines.slice(0, 6));
  const truncated = await agree(file, { anchor: head }, ['--anchor', `${head.seq}:${head.hash}`]);
  assert.equal(truncated['reason'], 'truncated');
  const rewritten = await agree(await writeLines(lines), { anchor: { seq: 9, hash: 'f'.repeat(64) } }, ['--anchor', `9:${'f'.repeat(64)}`]);
  assert.equal(rewritten['reason'], 'anchor_mismatch');
  const tail = await writeLines(lines.slice(4));
  assert.equal((await agree(tail)).reason, 'bad_start');
  assert.equal((await agree(tail, { continuation: true }, ['--continuation'])).ok, true);
});

test('a chain split across files verifies as one, and a directory is read in seq order', async () => {
  const dir = join(root, 'rotated');
  await mkdir(dir);
  // named so that alphabetical order is not chain order
  const parts = [['c.jsonl', lines.slice(0, 3)], ['a.jsonl', lines.slice(3, 6)], ['b.jsonl', lines.slice(6)]] as const;
  for (const [name, content] of parts) await writeFile(join(dir, name), `${content.join('\n')}\n`);
  await writeFile(join(dir, 'audit.jsonl.torn-4-1700000000000'), 'ignored: not a .jsonl file');
  const whole = await verifyWithPython([dir]);
  assert.deepEqual([whole['ok'], whole['records'], whole['files'], whole['head']], [true, 9, 3, head]);
  const [first, second, third] = parts.map(([name]) => join(dir, name));
  assert.equal((await verifyWithPython([first ?? '', second ?? '', third ?? ''])).ok, true);
  const swapped = await verifyWithPython([second ?? '', first ?? '', third ?? '']);
  assert.deepEqual([swapped['reason'], swapped['file'], swapped['line']], ['bad_start', second, 1]);
  const missing = await verifyWithPython([first ?? '', third ?? '']);
  assert.deepEqual([missing['reason'], missing['file'], missing['line'], missing['seq']], ['seq_gap', third, 1, 4]);
});

test('the first record of a file must chain to the last record of the file before it', async () => {
  const earlier = await writeLines([...lines.slice(0, 5), resealed(at(5), { bytes_up: 1 })], 'part-1.jsonl');
  const later = await writeLines(lines.slice(6), 'part-2.jsonl');
  const result = await verifyWithPython([earlier, later]);
  assert.deepEqual([result['reason'], result['file'], result['line'], result['seq'], result['records']], ['prev_mismatch', later, 1, 7, 6]);
});

test('the text report names the file, line and seq; usage errors exit 2', async () => {
  const file = await writeLines(lines.filter((_, index) => index !== 6));
  const broken = await python([SCRIPT, file]);
  assert.equal(broken.code, 1);
  assert.equal(broken.stdout, `broken at seq 7 (${file}:7): removed record (seq gap): seq 8 follows seq 6: 1 record(s) missing\n`);
  const ok = await python([SCRIPT, join(root, 'genuine', 'audit.jsonl')]);
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, `ok: 9 records verified in 1 file(s)\nhead: seq 9 sha256 ${head.hash}\n`);
  assert.equal((await python([SCRIPT])).code, 2);
  assert.equal((await python([SCRIPT, join(root, 'no-such-file.jsonl')])).code, 2);
  assert.equal((await python([SCRIPT, '--anchor', 'nine', file])).code, 2);
});

/** Runs the script's checkpoint check on each case; true/false per case. */
async function pythonVerifies(cases: readonly { key: Buffer; message: Buffer; signature: Buffer }[]): Promise<boolean[]> {
  const input = join(root, `signatures-${++counter}.json`);
  await writeFile(input, JSON.stringify(cases.map(({ key, message, signature }) => ({ key: key.toString('hex'), message: message.toString('hex'), signature: signature.toString('hex') }))));
  const program = [
    'import importlib.util, json, sys',
    'sys.path.insert(0, sys.argv[1])',
    "spec = importlib.util.spec_from_file_location('verifier', sys.argv[2])",
    'verifier = importlib.util.module_from_spec(spec)',
    'spec.loader.exec_module(verifier)',
    'cases = json.load(open(sys.argv[3]))',
    "print(json.dumps([verifier.verify_checkpoint_signature(*(bytes.fromhex(c[k]) for k in ('key', 'message', 'signature'))) for c in cases]))",
  ].join('\n');
  const result = await python(['-c', program, EXAMPLES, SCRIPT, input]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as boolean[];
}

const rawPublicKey = (key: KeyObject): Buffer => Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url');
const flipped = (bytes: Buffer, index: number): Buffer => Buffer.from(bytes.map((byte, at) => (at === index ? byte ^ 0x01 : byte)));
const ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

test('the Ed25519 checkpoint check accepts node:crypto signatures and refuses tampering', async () => {
  const signer = generateKeyPairSync('ed25519');
  const stranger = generateKeyPairSync('ed25519');
  const key = rawPublicKey(signer.publicKey);
  const messages = [Buffer.alloc(0), Buffer.from(`checkpoint seq=${head.seq} hash=${head.hash}`), randomBytes(1000)];
  const valid = messages.map((message) => ({ key, message, signature: sign(null, message, signer.privateKey) }));
  assert.deepEqual(await pythonVerifies(valid), [true, true, true]);
  const [, sample] = valid;
  assert.ok(sample !== undefined);
  // S + L is the same scalar mod L; RFC 8032 §5.1.7 refuses it, so a signature has one encoding
  const s = BigInt(`0x${Buffer.from(sample.signature.subarray(32)).reverse().toString('hex')}`) + ORDER;
  const malleable = Buffer.concat([sample.signature.subarray(0, 32), Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse()]);
  const tampered = [
    { ...sample, message: flipped(sample.message, 7) },
    { ...sample, signature: flipped(sample.signature, 3) },
    { ...sample, signature: flipped(sample.signature, 40) },
    { ...sample, key: rawPublicKey(stranger.publicKey) },
    { ...sample, key: flipped(key, 0) },
    { ...sample, signature: malleable },
    { ...sample, signature: sample.signature.subarray(0, 63) },
  ];
  assert.deepEqual(await pythonVerifies(tampered), tampered.map(() => false));
});

test('the Ed25519 check passes RFC 8032 §7.1 test 1', async () => {
  const vector = {
    key: Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex'),
    message: Buffer.alloc(0),
    signature: Buffer.from('e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b', 'hex'),
  };
  assert.deepEqual(await pythonVerifies([vector, { ...vector, message: Buffer.from([0]) }]), [true, false]);
});

/** A signed chain as Sluice's AuditTrail writes it: checkpoints every 3 records, a key rotation, rotated files. */
async function signedChain(): Promise<{ dir: string; oldKey: string; lines: string[] }> {
  const dir = join(root, `signed-${++counter}`);
  await mkdir(dir, { recursive: true });
  const open = async (): Promise<AuditTrail> => AuditTrail.open(join(dir, 'audit.jsonl'), { fsync: false }, {
    keys: await loadSigningKeys(dir), checkpoint: { everyRecords: 3, everySeconds: 60 }, rotate: { maxBytes: 4096, daily: false },
    retain: { maxAgeDays: null, maxTotalBytes: 9000 }, schedule: new ManualTimer().schedule,
  });
  const first = await open();
  const oldKey = first.publicKey;
  for (let n = 0; n < 10; n += 1) await first.append({ kind: 'reload', outcome: 'rejected', errors: [`${n}${'x'.repeat(400)}`] });
  await first.close();
  await createSigningKey(join(dir, NEXT_SIGNING_KEY_FILE));
  const second = await open();
  for (let n = 0; n < 10; n += 1) await second.append({ kind: 'reload', outcome: 'rejected', errors: [`${n}${'y'.repeat(400)}`] });
  await second.close();
  return { dir, oldKey, lines: (await readFile(join(dir, 'audit.jsonl'), 'utf8')).split('\n').slice(0, -1) };
}

test('checkpoints: Python follows rotated files, retention and a key rotation, and names each tamper as Sluice does', async () => {
  const { dir, oldKey } = await signedChain();
  const paths = (await chainFilesIn(dir)).map((file) => file.path);
  assert.ok(paths.length >= 2, 'rotated');
  // Retention deleted the file holding the key_rotation announcement: the old key alone no longer
  // reaches the new one, so the auditor passes both.
  const newKey = JSON.parse((await readFile(paths.at(-1) ?? '', 'utf8')).trim().split('\n').at(-1) ?? '{}').key as string;
  const orphaned = await verifyChain(paths, { pubkeys: [oldKey], window: 3 });
  assert.ok(!orphaned.ok && orphaned.reason === 'checkpoint_untrusted_key', JSON.stringify(orphaned));
  const node = await verifyChain(paths, { pubkeys: [oldKey, newKey], window: 3 });
  assert.ok(node.ok, JSON.stringify(node));
  const py = await verifyWithPython(['--pubkey', oldKey, '--pubkey', newKey, '--window', '3', dir]);
  assert.deepEqual([py['ok'], py['records'], py['head'], (py['signed'] as { trigger: string }).trigger], [true, node.records, node.head, 'shutdown']);
  assert.notEqual(node.first?.seq, 1, 'retention deleted the oldest files');

  // Single-file tampers, each checked by both verifiers with the old (announcing) key.
  const whole = (await Promise.all(paths.map((path) => readFile(path, 'utf8')))).join('').split('\n').slice(0, -1);
  const records = whole.map((line) => JSON.parse(line) as AuditRecord);
  const checkpointAt = records.findIndex((record, index) => index > 4 && record.kind === 'checkpoint' && record['trigger'] === 'records');
  const relinked = (content: string[], from: number): string[] => {
    const out = [...content];
    for (let index = from; index < out.length; index += 1) {
      const { seq: _seq, ts, prev: _prev, hash: _hash, ...fields } = JSON.parse(out[index] ?? '{}') as AuditRecord;
      const before = JSON.parse(out[index - 1] ?? '{}') as AuditRecord;
      out[index] = sealRecord(before.seq + 1, ts, before.hash, fields as AuditRecord).line.slice(0, -1);
    }
    return out;
  };
  const cases: [string, string[]][] = [
    ['rewritten, checkpoints kept', relinked(whole.map((line, index) => (index === 2 ? resealed(line, { errors: ['forged'] }) : line)), 3)],
    ['checkpoints stripped', relinked(whole.filter((_, index) => index === 0 || records[index]?.kind !== 'checkpoint'), 1)],
    ['signature altered', relinked(whole.map((line, index) => (index === checkpointAt ? resealed(line, { signature: Buffer.alloc(64, 1).toString('base64') }) : line)), checkpointAt + 1)],
    ['tail cut', whole.slice(0, -1)],
  ];
  for (const [name, content] of cases) {
    const file = await writeLines(content);
    const expected = await verifyChain(file, { pubkeys: [oldKey, newKey], window: 3, continuation: true });
    assert.equal(expected.ok, false, `${name}: Sluice notices`);
    await agree(file, { pubkeys: [oldKey, newKey], window: 3, continuation: true }, ['--pubkey', oldKey, '--pubkey', newKey, '--window', '3', '--continuation']);
  }
});
