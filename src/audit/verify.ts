// Verifies an audit file end to end in one streaming pass: every line self-consistent (hash,
// canonical form) and linked to the one before (seq + 1, prev = previous hash), from seq 1.
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
  | 'truncated';

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
};

export type VerifyResult =
  | {
      readonly ok: true;
      readonly records: number;
      /** the first record's seq and prev: seq 1 and 64 zeros unless verified as a continuation */
      readonly first: { readonly seq: number; readonly prev: string } | null;
      /** the last record: compare its hash with an anchored copy to detect a truncated tail */
      readonly head: ChainHead | null;
    }
  | {
      readonly ok: false;
      /** records verified before the break */
      readonly records: number;
      /** the seq expected where the chain breaks (0 on a continuation's first line, whose seq is open) */
      readonly seq: number;
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
}

export async function verifyChain(file: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  const lines = readLines(file, MAX_RECORD_BYTES);
  let previous: AuditRecord | null = null;
  let first: { seq: number; prev: string } | null = null;
  let records = 0;
  let lineCount = 0;
  const anchor = options.anchor;
  for await (const line of lines) {
    lineCount = line.number;
    const expected = previous === null ? (options.continuation === true ? 0 : 1) : previous.seq + 1;
    const broken = (reason: BreakReason, detail: string, seq = expected): VerifyResult =>
      ({ ok: false, records, seq, line: line.number, reason, detail });
    if (line.overlong) return broken('line_too_long', 'records are never this long; the file is not an audit log or was damaged');
    if (!line.terminated) return broken('torn_tail', `${line.bytes.length} bytes after the last newline`);
    const check = checkLine(line.bytes);
    if (!check.ok) return broken(check.problem.kind, check.problem.detail);
    const record = check.record;
    if (previous === null) {
      if (options.continuation !== true && (record.seq !== 1 || record.prev !== GENESIS_PREV)) {
        return broken('bad_start', `first record has seq ${record.seq} and prev ${record.prev.slice(0, 12)}…`);
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
    previous = record;
    records += 1;
  }
  if (anchor !== undefined && (first === null || anchor.seq < first.seq || anchor.seq > (previous?.seq ?? 0))) {
    const lastSeq = previous?.seq ?? 0;
    const detail = anchor.seq > lastSeq
      ? `the file ends at seq ${lastSeq}, the anchored head is seq ${anchor.seq}`
      : `anchored seq ${anchor.seq} precedes this file's first record`;
    return { ok: false, records, seq: lastSeq + 1, line: lineCount + 1, reason: anchor.seq > lastSeq ? 'truncated' : 'anchor_mismatch', detail };
  }
  return { ok: true, records, first, head: previous === null ? null : { seq: previous.seq, hash: previous.hash } };
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
