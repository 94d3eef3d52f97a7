// Verifies an audit chain (one file or its rotated files in order) in one streaming pass: every
// line self-consistent and linked to the one before, and, given keys, every checkpoint signed.
import { checkCheckpoint, type CheckpointProblem } from './checkpoint.js';
import { checkLine, GENESIS_PREV, MAX_RECORD_BYTES, type AuditRecord, type ChainHead } from './record.js';
import { readLines, type FileLine } from './lines.js';

export type BreakReason =
  | 'torn_tail'
  | 'line_too_long'
  | 'unparseable'
  | 'malformed'
  | 'hash_mismatch'
  | 'non_canonical'
  | 'bad_start'
  | 'seq_gap'
  | 'seq_out_of_order'
  | 'prev_mismatch'
  | 'anchor_mismatch'
  | 'truncated'
  | CheckpointProblem['reason']
  | 'unsigned_records'
  | 'unsigned_tail';

/** What each break means to an auditor; the CLI prints these. */
export const BREAK_REASONS: Readonly<Record<BreakReason, string>> = {
  torn_tail: 'torn last line (no trailing newline)',
  line_too_long: `line longer than ${MAX_RECORD_BYTES} bytes`,
  unparseable: 'unparseable line',
  malformed: 'malformed record',
  hash_mismatch: 'edited record (hash does not match its content)',
  non_canonical: 'edited record (line is not in canonical form)',
  bad_start: 'chain does not start at seq 1',
  seq_gap: 'removed record (seq gap)',
  seq_out_of_order: 'reordered or inserted record (seq out of order)',
  prev_mismatch: 'broken prev link (prev is not the previous record\'s hash)',
  anchor_mismatch: 'record differs from the anchored head',
  truncated: 'records cut off the end (the anchored head is missing)',
  checkpoint_malformed: 'malformed checkpoint',
  checkpoint_head_mismatch: 'checkpoint does not sign the record before it (records inserted, removed or rewritten)',
  checkpoint_untrusted_key: 'checkpoint signed by an unknown key (chain rewritten without the key?)',
  checkpoint_bad_signature: 'forged checkpoint (signature does not verify)',
  unsigned_records: 'too many records without a checkpoint (checkpoints removed, chain rewritten without the key?)',
  unsigned_tail: 'records after the last checkpoint, or a missing final checkpoint (tail truncated or rewritten?)',
};

/** The last signed checkpoint a verification found, and how many records follow it unsigned. */
export interface SignedHead {
  readonly seq: number;
  readonly time: string;
  readonly key: string;
  readonly trigger: string;
}

export type VerifyResult =
  | {
      readonly ok: true;
      readonly records: number;
      /** the first record's seq and prev: seq 1 and 64 zeros unless verified as a continuation */
      readonly first: { readonly seq: number; readonly prev: string } | null;
      /** the last record: compare its hash with an anchored copy to detect a truncated tail */
      readonly head: ChainHead | null;
      /** with keys: the last checkpoint, and the records after it (only ever non-zero with `live`) */
      readonly signed?: SignedHead | null;
      readonly unsigned?: number;
    }
  | {
      readonly ok: false;
      /** records verified before the break */
      readonly records: number;
      /** the seq expected where the chain breaks (0 on a continuation's first line, whose seq is open) */
      readonly seq: number;
      /** the file and its 1-based line where the chain breaks */
      readonly file: string;
      readonly line: number;
      readonly reason: BreakReason;
      readonly detail: string;
    };

export interface VerifyOptions {
  /**
   * Accept a first record with any seq and prev (a file that continues another one, e.g. after an
   * operator split the log). Off by default so a file with its head cut off is reported.
   */
  readonly continuation?: boolean;
  /**
   * A head recorded earlier somewhere the attacker cannot write: the file must still hold that seq
   * with that hash. The only way to detect records cut off the end of the chain.
   */
  readonly anchor?: ChainHead;
  /**
   * Trusted checkpoint keys (base64 raw Ed25519). When given, every checkpoint must verify under
   * one of them (or a successor one announced), no run of more than `window` records may go
   * unsigned, and the chain must end with a shutdown checkpoint (or a rotation one followed by a
   * further, empty file) unless `live`.
   */
  readonly pubkeys?: readonly string[];
  /** the writer's checkpoint.every_records; default 1000 */
  readonly window?: number;
  /** the chain goes on past the files given (Sluice is writing it now): up to `window` unsigned records may end it */
  readonly live?: boolean;
}

export const DEFAULT_WINDOW = 1000;

const LINK_REASONS: ReadonlySet<BreakReason> = new Set(['seq_gap', 'seq_out_of_order', 'prev_mismatch']);

interface SigningState {
  trusted: Set<string>;
  unsigned: number;
  last: SignedHead | null;
}

/**
 * Verifies `files` as one chain, in the order given: the first record of each file must chain to
 * the last record of the file before it. A first record after seq 1 is accepted only when a later
 * `audit_retention` record names exactly the record it follows (the files before it were deleted
 * by retention), or with `continuation`.
 */
export async function verifyChain(files: string | readonly string[], options: VerifyOptions = {}): Promise<VerifyResult> {
  const paths = typeof files === 'string' ? [files] : files;
  const anchor = options.anchor;
  const window = options.window ?? DEFAULT_WINDOW;
  const signing: SigningState | null = options.pubkeys === undefined ? null : { trusted: new Set(options.pubkeys), unsigned: 0, last: null };
  let previous: AuditRecord | null = null;
  let first: { seq: number; prev: string } | null = null;
  /** a first record after seq 1, waiting for the retention record that explains it */
  let openStart: { readonly file: string; readonly line: number; readonly seq: number; readonly prev: string } | null = null;
  let records = 0;
  let endedAt = { file: paths.at(-1) ?? '', line: 1 };
  let emptyAfterLast = false;
  for (const file of paths) {
    const lines = readLines(file, MAX_RECORD_BYTES);
    let lineCount = 0;
    for await (const line of lines) {
      lineCount = line.number;
      const expected = previous === null ? (options.continuation === true ? 0 : 1) : previous.seq + 1;
      // A broken link after a first record that no retention record explained yet says the files
      // are out of order or the head is missing: that start is the first problem.
      const broken = (reason: BreakReason, detail: string, seq = expected): VerifyResult =>
        openStart !== null && LINK_REASONS.has(reason) ? badStart(openStart) : { ok: false, records, seq, file, line: line.number, reason, detail };
      if (line.overlong) return broken('line_too_long', 'records are never this long; the file is not an audit log or was damaged');
      if (!line.terminated) return broken('torn_tail', `${line.bytes.length} bytes after the last newline`);
      const check = checkLine(line.bytes);
      if (!check.ok) return broken(check.problem.kind, check.problem.detail);
      const record = check.record;
      if (previous === null) {
        if (options.continuation !== true && (record.seq !== 1 || record.prev !== GENESIS_PREV)) {
          openStart = { file, line: line.number, seq: record.seq, prev: record.prev };
        }
        first = { seq: record.seq, prev: record.prev };
      } else if (record.seq > expected) {
        const reappears = await seqAppearsLater(lines, expected);
        return reappears
          ? broken('seq_out_of_order', `seq ${record.seq} comes before seq ${expected}, which appears later`)
          : broken('seq_gap', `seq ${record.seq} follows seq ${previous.seq}: ${record.seq - expected} record(s) missing`);
      } else if (record.seq < expected) {
        return broken('seq_out_of_order', `seq ${record.seq} follows seq ${previous.seq}: a record was inserted or moved`);
      } else if (record.prev !== previous.hash) {
        return broken('prev_mismatch', `prev ${record.prev.slice(0, 12)}… but seq ${previous.seq} hashes to ${previous.hash.slice(0, 12)}…`);
      }
      if (anchor !== undefined && record.seq === anchor.seq && record.hash !== anchor.hash) {
        return broken('anchor_mismatch', `seq ${record.seq} hashes to ${record.hash.slice(0, 12)}…, anchored as ${anchor.hash.slice(0, 12)}…`, record.seq);
      }
      if (openStart !== null && record.kind === 'audit_retention' && record['last_seq'] === openStart.seq - 1 && record['last_hash'] === openStart.prev) openStart = null;
      if (signing !== null) {
        const problem = checkSigning(record, signing, window);
        if (problem !== null) return broken(problem.reason, problem.detail, record.seq);
      }
      previous = record;
      records += 1;
    }
    emptyAfterLast = lineCount === 0 && previous !== null;
    if (lineCount > 0) endedAt = { file, line: lineCount + 1 };
  }
  const lastSeq = previous?.seq ?? 0;
  const atEnd = (reason: BreakReason, detail: string): VerifyResult => ({ ok: false, records, seq: lastSeq + 1, file: endedAt.file, line: endedAt.line, reason, detail });
  if (openStart !== null) return badStart(openStart);
  if (anchor !== undefined && (first === null || anchor.seq < first.seq || anchor.seq > lastSeq)) {
    return anchor.seq > lastSeq
      ? atEnd('truncated', `the file ends at seq ${lastSeq}, the anchored head is seq ${anchor.seq}`)
      : atEnd('anchor_mismatch', `anchored seq ${anchor.seq} precedes this file's first record`);
  }
  if (signing !== null && previous !== null && options.live !== true) {
    const closing = signing.unsigned === 0 ? signing.last?.trigger : undefined;
    if (closing !== 'shutdown' && !(closing === 'rotation' && emptyAfterLast)) {
      return atEnd('unsigned_tail', closing === 'rotation'
        ? 'the chain ends at a rotation checkpoint but the file that continues it is missing'
        : `${signing.unsigned} record(s) after the last checkpoint${signing.last === null ? '' : ` (seq ${signing.last.seq}, ${signing.last.trigger})`} and no shutdown checkpoint; pass --live if Sluice is still writing`);
    }
  }
  const head = previous === null ? null : { seq: previous.seq, hash: previous.hash };
  return signing === null ? { ok: true, records, first, head } : { ok: true, records, first, head, signed: signing.last, unsigned: signing.unsigned };
}

function badStart(start: { readonly file: string; readonly line: number; readonly seq: number; readonly prev: string }): VerifyResult {
  const detail = `first record has seq ${start.seq} and prev ${start.prev.slice(0, 12)}…, and no audit_retention record accounts for the records before it`;
  return { ok: false, records: 0, seq: 1, file: start.file, line: start.line, reason: 'bad_start', detail };
}

function checkSigning(record: AuditRecord, state: SigningState, window: number): { reason: BreakReason; detail: string } | null {
  if (record.kind !== 'checkpoint') {
    state.unsigned += 1;
    return state.unsigned > window ? { reason: 'unsigned_records', detail: `${state.unsigned} records since the last checkpoint; the writer signs at least every ${window}` } : null;
  }
  const check = checkCheckpoint(record, state.trusted);
  if (!check.ok) return check.problem;
  // A successor replaces the key that announced it: a leaked old key cannot sign what follows.
  if (check.nextKey !== null) state.trusted = new Set([check.nextKey]);
  state.unsigned = 0;
  state.last = { seq: record.seq, time: String(record['time']), key: String(record['key']), trigger: check.trigger };
  return null;
}

/** Tells a swap (the missing seq shows up further on) from a deletion; reads the rest of the file. */
async function seqAppearsLater(lines: AsyncIterable<FileLine>, seq: number): Promise<boolean> {
  for await (const line of lines) {
    if (line.overlong || !line.terminated) return false;
    const check = checkLine(line.bytes);
    if (check.ok && check.record.seq === seq) return true;
  }
  return false;
}
