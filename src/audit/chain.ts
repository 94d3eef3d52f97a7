// The append side of the audit log: a SHA-256 hash chain in JSONL, group-committed so an append
// resolves once durable; a write error fails it closed until a retry records `audit_recovery`.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isSluiceError, SluiceError } from '../errors.js';
import { appendFlags } from '../state-file.js';
import { realTimer, type Schedule, type Scheduled } from './schedule.js';
import { lockWriter, type WriterLock } from './writer-lock.js';
import type { AppendUrgency, AuditRecoveryEntry } from './kinds.js';
import { sealRecord, type AuditFields, type AuditRecord, type ChainHead, type SealedRecord } from './record.js';
import { findResumePoint, moveTornTail, recoveryFields, syncDirectory, writeAll, type MovedTail } from './recovery.js';

export interface AuditChainOptions {
  /** each batch durable (O_DSYNC) before its appends resolve; off only for tests and benchmarks */
  readonly fsync: boolean;
  /**
   * called after each durable batch with its record count, the durable head it reached (what a
   * reader such as the SIEM stream may now read) and how long the write and sync took
   */
  readonly onCommitted?: (records: number, durable: ChainHead, seconds: number) => void;
  /** called on every failed write, flush or retry (the write-error metric) */
  readonly onWriteError?: (error: unknown) => void;
  /** when to retry after a write failure; tests pass their own timer */
  readonly retry?: RetryOptions;
  /** the head a file without records of its own continues (the last record of the file rotated before it) */
  readonly continueFrom?: ChainHead;
  /** how long a record appended `with_next_commit` may wait for a batch to ride in */
  readonly deferred?: DeferredOptions;
}

export interface DeferredOptions {
  readonly schedule?: Schedule;
  readonly maxDelayMs?: number;
}

export interface RetryOptions {
  readonly schedule?: Schedule;
  /** first retry this long after the failure, then doubling up to maxMs */
  readonly initialMs?: number;
  readonly maxMs?: number;
}

/** Why appends are refused right now, for readiness and logs. */
export interface ChainFailure {
  readonly error: SluiceError;
  readonly since: Date;
  /** appends rejected since the failure, the failed batch included */
  readonly refused: number;
}

export interface AuditRecovery extends MovedTail {
  /** seq of the `audit_recovery` record that reports the torn tail */
  readonly recordSeq: number;
}

interface Waiting {
  readonly urgent: boolean;
  readonly record: AuditRecord;
  readonly line: string;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

const RETRY_INITIAL_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const DEFERRED_MAX_DELAY_MS = 200;

export class AuditChain {
  readonly file: string;
  #recovery: AuditRecovery | null = null;
  readonly #handle: FileHandle;
  readonly #lock: WriterLock;
  readonly #options: AuditChainOptions;
  /** the last record sealed; runs ahead of #durable while a batch is waiting or in flight */
  #head: ChainHead;
  #durable: ChainHead;
  /** bytes of the file that hold durable records; anything past it is a failed write's remains */
  #size: number;
  #waiting: Waiting[] = [];
  /** appends waiting that asked for a commit now; deferred ones alone start none */
  #urgentWaiting = 0;
  #deferredFlush: Scheduled | null = null;
  #flight: Promise<void> | null = null;
  #failure: { error: SluiceError; since: Date; refused: number } | null = null;
  #retry: Scheduled | null = null;
  #closing: Promise<void> | null = null;

  private constructor(file: string, handle: FileHandle, lock: WriterLock, head: ChainHead, size: number, options: AuditChainOptions) {
    this.file = file;
    this.#handle = handle;
    this.#lock = lock;
    this.#head = head;
    this.#durable = head;
    this.#size = size;
    this.#options = options;
  }

  /** Opens (creating with mode 0600) and resumes the chain from the file's last good record. */
  static async open(file: string, options: AuditChainOptions): Promise<AuditChain> {
    let handle: FileHandle;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw unavailable(`cannot open ${file}`, error);
    }
    const lock = await lockWriter(file);
    try {
      handle = await open(file, appendFlags(options.fsync, 'read'), 0o600);
    } catch (error) {
      await lock.release();
      throw unavailable(`cannot open ${file}`, error);
    }
    let chain: AuditChain | undefined;
    try {
      const { size } = await handle.stat();
      const resume = await findResumePoint(handle, file, size);
      if (size === 0 && options.fsync) await syncDirectory(dirname(file));
      const moved = resume.torn === null ? null : await moveTornTail(handle, file, resume.torn, resume.head.seq + 1, new Date());
      // No record of its own (empty, or only a torn first write): the file continues the given head.
      const head = resume.head.seq === 0 && options.continueFrom !== undefined ? options.continueFrom : resume.head;
      chain = new AuditChain(file, handle, lock, head, resume.torn === null ? size : resume.torn.start, options);
      if (moved !== null) {
        const record = await chain.append(recoveryFields(moved));
        chain.#recovery = { ...moved, recordSeq: record.seq };
      }
      return chain;
    } catch (error) {
      if (chain !== undefined) {
        // Its first append failed and scheduled a retry: closing the chain cancels that too.
        await chain.close().catch(() => undefined);
      } else {
        await handle.close().catch(() => undefined);
        await lock.release();
      }
      throw isSluiceError(error) ? error : unavailable(`cannot resume ${file}`, error);
    }
  }

  /** Set when open found a torn tail and moved it aside; the app should log it loudly. */
  get recovery(): AuditRecovery | null {
    return this.#recovery;
  }

  /** The last record appended (durable or not): anchor `hash` off-box to detect tail truncation. */
  get head(): ChainHead {
    return this.#head;
  }

  /** Bytes of the file holding durable records: what rotation by size measures. */
  get bytes(): number {
    return this.#size;
  }

  /** Null while appends are accepted; otherwise why they are refused (readiness, fail-closed callers). */
  get failure(): ChainFailure | null {
    return this.#failure === null ? null : { ...this.#failure };
  }

  /**
   * Seals `fields` as the next record and resolves once it is on disk. Sequence numbers follow
   * call order. AUDIT_RECORD_INVALID rejects only this call. A write failure rejects every waiting
   * append with AUDIT_UNAVAILABLE, and every later one until a retry has written again, so
   * nothing acts on an unrecorded decision. See AppendUrgency for `urgency`.
   */
  append(fields: AuditFields, urgency: AppendUrgency = 'now'): Promise<AuditRecord> {
    if (this.#failure !== null) {
      this.#failure.refused += 1;
      return Promise.reject(this.#failure.error);
    }
    if (this.#closing !== null) return Promise.reject(new SluiceError('AUDIT_UNAVAILABLE', `${this.file} is closed`));
    let sealed: SealedRecord;
    try {
      sealed = sealRecord(this.#head.seq + 1, new Date().toISOString(), this.#head.hash, fields);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#head = { seq: sealed.record.seq, hash: sealed.record.hash };
    const urgent = urgency === 'now';
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#waiting.push({ urgent, record: sealed.record, line: sealed.line, resolve, reject });
      if (urgent) {
        this.#urgentWaiting += 1;
        this.#startDrain();
      } else if (this.#flight === null) {
        this.#deferFlush();
      }
    });
  }

  /** Waits for every accepted append to be durable (or rejected), then closes the file. */
  close(): Promise<void> {
    this.#retry?.cancel();
    if (this.#closing === null && this.#waiting.length > 0 && this.#failure === null) this.#startDrain();
    this.#closing ??= this.#closeWhenDrained();
    return this.#closing;
  }

  #startDrain(): void {
    this.#deferredFlush?.cancel();
    this.#deferredFlush = null;
    // Starting the drain on a later microtask lets every append of the current tick join the batch.
    this.#flight ??= Promise.resolve().then(() => this.#drain());
  }

  #deferFlush(): void {
    if (this.#deferredFlush !== null || this.#closing !== null) return;
    const schedule = this.#options.deferred?.schedule ?? realTimer;
    this.#deferredFlush = schedule(() => {
      this.#deferredFlush = null;
      if (this.#waiting.length > 0 && this.#failure === null) this.#startDrain();
    }, this.#options.deferred?.maxDelayMs ?? DEFERRED_MAX_DELAY_MS);
  }

  async #closeWhenDrained(): Promise<void> {
    while (this.#flight !== null) await this.#flight;
    await this.#handle.close();
    await this.#lock.release();
  }

  async #drain(): Promise<void> {
    // The first pass writes whatever started the drain (an urgent append, the deferred timer, close);
    // after it, deferred records left alone wait for an urgent one or their timer, unless closing.
    let first = true;
    while (this.#waiting.length > 0 && this.#failure === null && (first || this.#urgentWaiting > 0 || this.#closing !== null)) {
      first = false;
      const batch = this.#waiting;
      this.#waiting = [];
      this.#urgentWaiting = 0;
      const bytes = Buffer.from(batch.map((entry) => entry.line).join(''));
      const started = performance.now();
      try {
        await this.#write(bytes);
      } catch (error) {
        this.#fail(error, batch);
        break;
      }
      const last = batch.at(-1)?.record ?? this.#durable;
      this.#durable = { seq: last.seq, hash: last.hash };
      for (const entry of batch) entry.resolve(entry.record);
      this.#notify(batch.length, (performance.now() - started) / 1000);
    }
    this.#flight = null;
    if (this.#waiting.length > 0 && this.#failure === null) this.#deferFlush();
  }

  async #write(bytes: Buffer): Promise<void> {
    // With fsync the file is open with O_DSYNC: each write returns once durable, as a write and an
    // fdatasync would, in one trip to the thread pool instead of two.
    await writeAll(this.#handle, bytes);
    this.#size += bytes.length;
  }

  #fail(error: unknown, batch: readonly Waiting[]): void {
    const failure = unavailable(`write to ${this.file} failed`, error);
    const rejected = [...batch, ...this.#waiting];
    this.#failure = { error: failure, since: new Date(), refused: rejected.length };
    this.#waiting = [];
    this.#urgentWaiting = 0;
    this.#deferredFlush?.cancel();
    this.#deferredFlush = null;
    // The refused records never became part of the chain: the next record follows the last durable one.
    this.#head = this.#durable;
    for (const entry of rejected) entry.reject(failure);
    this.#reportWriteError(error);
    this.#scheduleRetry(this.#options.retry?.initialMs ?? RETRY_INITIAL_MS);
  }

  #scheduleRetry(delayMs: number): void {
    if (this.#closing !== null) return;
    const schedule = this.#options.retry?.schedule ?? realTimer;
    this.#retry = schedule(() => {
      this.#retry = null;
      if (this.#closing !== null) return;
      this.#flight = this.#recover(delayMs).finally(() => {
        this.#flight = null;
      });
    }, delayMs);
  }

  /**
   * Cuts whatever the failed write left past the last durable record (a partial line would break
   * the chain for every later reader), then writes an `audit_recovery` record saying what failed,
   * since when and how many appends were refused. Only once that is durable are appends taken again.
   */
  async #recover(delayMs: number): Promise<void> {
    const failure = this.#failure;
    if (failure === null) return;
    let seconds: number;
    try {
      const { size } = await this.#handle.stat();
      if (size < this.#size) throw new Error(`the file shrank to ${size} bytes below its ${this.#size} durable bytes`);
      if (size > this.#size) await this.#handle.truncate(this.#size);
      const started = performance.now();
      const sealed = sealRecord(this.#durable.seq + 1, new Date().toISOString(), this.#durable.hash, {
        kind: 'audit_recovery',
        reason: failure.error.message,
        failed_at: failure.since.toISOString(),
        refused_appends: failure.refused,
        truncated_bytes: size - this.#size,
      } satisfies AuditRecoveryEntry);
      await this.#write(Buffer.from(sealed.line));
      seconds = (performance.now() - started) / 1000;
      this.#head = this.#durable = { seq: sealed.record.seq, hash: sealed.record.hash };
    } catch (error) {
      this.#reportWriteError(error);
      this.#scheduleRetry(Math.min(delayMs * 2, this.#options.retry?.maxMs ?? RETRY_MAX_MS));
      return;
    }
    this.#failure = null;
    this.#notify(1, seconds);
  }

  #reportWriteError(error: unknown): void {
    this.#guardHook(() => this.#options.onWriteError?.(error));
  }

  #notify(records: number, seconds: number): void {
    const durable = this.#durable;
    this.#guardHook(() => this.#options.onCommitted?.(records, durable, seconds));
  }

  #guardHook(hook: () => void): void {
    try {
      hook();
    } catch (error) {
      // A broken hook is an application bug: surface it loudly, but never wedge the chain.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

function unavailable(what: string, cause: unknown): SluiceError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new SluiceError('AUDIT_UNAVAILABLE', `${what}: ${why}`, { cause });
}
