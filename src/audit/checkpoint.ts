// Signed checkpoints: a record that signs the chain head before it (seq, hash, time) with the
// appliance's Ed25519 key, so a chain rewritten by someone without the key no longer verifies.
import { canonicalJson } from './canonical.js';
import type { CheckpointEntry, CheckpointTrigger } from './kinds.js';
import type { AuditRecord, ChainHead } from './record.js';
import { signBytes, verifyBytes, type SigningKey } from './signing-key.js';

/** Domain separation: a checkpoint signature can never be replayed as a bundle or other signature. */
const CONTEXT = 'sluice-audit-checkpoint-v1\n';

/** Everything a checkpoint signs: the record without its kind and signature. */
type SignedFields = Omit<CheckpointEntry, 'kind' | 'signature'>;

/** The exact bytes signed: the context line, then the canonical JSON of the signed fields. */
export function checkpointMessage(fields: SignedFields): Buffer {
  const signed: Record<string, string | number> = { trigger: fields.trigger, head_seq: fields.head_seq, head_hash: fields.head_hash, time: fields.time, key: fields.key };
  if (fields.next_key !== undefined) signed['next_key'] = fields.next_key;
  return Buffer.from(CONTEXT + canonicalJson(signed));
}

/** A checkpoint over `head` (the record it will follow); `next` announces a successor key. */
export function checkpointEntry(key: SigningKey, head: ChainHead, trigger: CheckpointTrigger, now: Date, next?: SigningKey): CheckpointEntry {
  const fields: SignedFields = {
    trigger,
    head_seq: head.seq,
    head_hash: head.hash,
    time: now.toISOString(),
    key: key.publicKey,
    ...(next === undefined ? {} : { next_key: next.publicKey }),
  };
  return { kind: 'checkpoint', ...fields, signature: signBytes(key, checkpointMessage(fields)) };
}

export type CheckpointProblem =
  | { readonly reason: 'checkpoint_malformed'; readonly detail: string }
  | { readonly reason: 'checkpoint_head_mismatch'; readonly detail: string }
  | { readonly reason: 'checkpoint_untrusted_key'; readonly detail: string }
  | { readonly reason: 'checkpoint_bad_signature'; readonly detail: string };

export type CheckpointCheck =
  | { readonly ok: true; readonly trigger: CheckpointTrigger; readonly nextKey: string | null }
  | { readonly ok: false; readonly problem: CheckpointProblem };

const TRIGGERS: ReadonlySet<string> = new Set<CheckpointTrigger>(['start', 'records', 'interval', 'shutdown', 'rotation', 'retention', 'key_rotation']);

/**
 * Checks a `checkpoint` record that already passed the chain checks: it signs exactly the record
 * before it, with a key in `trusted`, and the signature holds.
 */
export function checkCheckpoint(record: AuditRecord, trusted: ReadonlySet<string>): CheckpointCheck {
  const { trigger, head_seq: headSeq, head_hash: headHash, time, key, next_key: nextKey, signature } = record;
  if (typeof trigger !== 'string' || !TRIGGERS.has(trigger) || typeof headSeq !== 'number' || typeof headHash !== 'string' ||
    typeof time !== 'string' || typeof key !== 'string' || typeof signature !== 'string' || (nextKey !== undefined && typeof nextKey !== 'string')) {
    return fail('checkpoint_malformed', 'a checkpoint needs trigger, head_seq, head_hash, time, key and signature');
  }
  if (headSeq !== record.seq - 1 || headHash !== record.prev) {
    return fail('checkpoint_head_mismatch', `signs seq ${headSeq} ${headHash.slice(0, 12)}… but follows seq ${record.seq - 1} ${record.prev.slice(0, 12)}…`);
  }
  if (!trusted.has(key)) return fail('checkpoint_untrusted_key', `signed by ${key}, which is not a trusted or announced key`);
  const fields: SignedFields = { trigger: trigger as CheckpointTrigger, head_seq: headSeq, head_hash: headHash, time, key, ...(nextKey === undefined ? {} : { next_key: nextKey }) };
  if (!verifyBytes(key, checkpointMessage(fields), signature)) return fail('checkpoint_bad_signature', `the signature does not verify under ${key}`);
  return { ok: true, trigger: trigger as CheckpointTrigger, nextKey: nextKey ?? null };
}

function fail(reason: CheckpointProblem['reason'], detail: string): CheckpointCheck {
  return { ok: false, problem: { reason, detail } };
}
