// The audit record: its shape, how it is sealed into a hash-chained line, and how one line is
// checked on its own (shared by the writer's tail recovery and the verifier).
import { createHash } from 'node:crypto';
import { SluiceError } from '../errors.js';
import { canonicalJson, canonicalMembers, type JsonValue } from './canonical.js';

/** `prev` of the first record: there is no previous hash. */
export const GENESIS_PREV = '0'.repeat(64);

/** A line longer than this is refused at append, so tail recovery can bound how far it reads. */
export const MAX_RECORD_BYTES = 1024 * 1024;

export interface AuditFields {
  readonly kind: string;
  readonly [field: string]: JsonValue;
}

export interface AuditRecord {
  readonly seq: number;
  readonly ts: string;
  readonly prev: string;
  readonly hash: string;
  readonly kind: string;
  readonly [field: string]: JsonValue;
}

/** Where a chain stands: its last record's seq and hash (seq 0 and GENESIS_PREV when empty). */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export interface SealedRecord {
  readonly record: AuditRecord;
  /** canonical serialisation of the whole record (hash included) plus '\n' */
  readonly line: string;
}

const RESERVED = new Set(['seq', 'ts', 'prev', 'hash']);
const HEX_64 = /^[0-9a-f]{64}$/;
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Chains `fields` after `prev`; throws AUDIT_RECORD_INVALID before anything is assigned. */
export function sealRecord(seq: number, ts: string, prev: string, fields: AuditFields): SealedRecord {
  if (typeof fields.kind !== 'string' || fields.kind === '') {
    throw new SluiceError('AUDIT_RECORD_INVALID', '$.kind: must be a non-empty string');
  }
  for (const key of Object.keys(fields)) {
    if (RESERVED.has(key)) throw new SluiceError('AUDIT_RECORD_INVALID', `$.${key}: reserved for the chain`);
  }
  const unsealed = { ...fields, seq, ts, prev };
  // One serialisation serves both the hash input and the line: the line is the same members with
  // `"hash"` inserted where it sorts.
  const members = canonicalMembers(unsealed);
  const texts = members.map((member) => member.text);
  const hash = sha256Hex(`{${texts.join(',')}}`);
  const at = members.findIndex((member) => member.key > 'hash');
  texts.splice(at < 0 ? texts.length : at, 0, `"hash":"${hash}"`);
  const record = { ...unsealed, hash } as AuditRecord;
  const line = `{${texts.join(',')}}\n`;
  if (Buffer.byteLength(line) > MAX_RECORD_BYTES) {
    throw new SluiceError('AUDIT_RECORD_INVALID', `record is larger than ${MAX_RECORD_BYTES} bytes`);
  }
  return { record, line };
}

export type LineProblem =
  | { readonly kind: 'unparseable'; readonly detail: string }
  | { readonly kind: 'malformed'; readonly detail: string }
  | { readonly kind: 'hash_mismatch'; readonly detail: string }
  | { readonly kind: 'non_canonical'; readonly detail: string };

export type LineCheck = { readonly ok: true; readonly record: AuditRecord } | { readonly ok: false; readonly problem: LineProblem };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks one line (without its '\n') in isolation: valid UTF-8 JSON, the chain fields well formed,
 * the self-hash right, and the bytes exactly the canonical form, so no edit can hide in whitespace,
 * key order or a duplicate key that JSON.parse would silently collapse.
 */
export function checkLine(bytes: Uint8Array): LineCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(bytes));
  } catch (error) {
    return fail('unparseable', error instanceof Error ? error.message : String(error));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('malformed', 'not a JSON object');
  const candidate = parsed as Record<string, unknown>;
  const { seq, ts, prev, hash, kind } = candidate;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return fail('malformed', 'seq is not a positive integer');
  if (typeof ts !== 'string' || !ISO_UTC_MS.test(ts)) return fail('malformed', 'ts is not ISO-8601 UTC with milliseconds');
  if (typeof prev !== 'string' || !HEX_64.test(prev)) return fail('malformed', 'prev is not 64 lowercase hex digits');
  if (typeof hash !== 'string' || !HEX_64.test(hash)) return fail('malformed', 'hash is not 64 lowercase hex digits');
  if (typeof kind !== 'string' || kind === '') return fail('malformed', 'kind is not a non-empty string');
  const unsealed: Record<string, unknown> = { ...candidate };
  delete unsealed['hash'];
  let expected: string;
  try {
    expected = sha256Hex(canonicalJson(unsealed));
  } catch (error) {
    // JSON.parse turns 1e400 into Infinity, which no writer could have hashed.
    return fail('malformed', error instanceof Error ? error.message : String(error));
  }
  if (expected !== hash) return fail('hash_mismatch', `content hashes to ${expected.slice(0, 12)}…, record says ${hash.slice(0, 12)}…`);
  const canonical = Buffer.from(canonicalJson(candidate));
  if (!canonical.equals(bytes)) return fail('non_canonical', 'line bytes differ from the canonical form of its content');
  return { ok: true, record: candidate as AuditRecord };
}

function fail(kind: LineProblem['kind'], detail: string): LineCheck {
  return { ok: false, problem: { kind, detail } };
}
