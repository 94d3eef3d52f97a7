// The append side of the audit log: a SHA-256 hash chain in a JSONL file, written with group commit
// so each append resolves only once its record is durable, and failing closed on any write error.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isSluiceError, SluiceError } from '../errors.js';
import { lockWriter, type WriterLock } from './writer-lock.js';
import { sealRecord, type AuditFields, type AuditRecord, type ChainHead, type SealedRecord } from './record.js';
import { findResumePoint, moveTornTail, recoveryFields, syncDirectory, writeAll, type MovedTail } from './recovery.js';

export interface AuditChainOptions {
  /** fdatasync every batch before its appends resolve; off only for tests and benchmarks */
  readonly fsync: boolean;
  /** called after each durable batch with its record count (metrics, tests) */
  readonly onCommitted?: (records: number) => void;
}

export interface AuditRecovery extends MovedTail {
  /** seq of the `audit_recovery` record that reports the torn tail */
  readonly recordSeq: number;
}

interface Waiting {
  readonly record: AuditRecord;
  readonly line: string;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (error: unknown) => void;
}

export class AuditChain {
  readonly file: string;
  #recovery: AuditRecovery | null = null;
  readonly #handle: FileHandle;
  readonly #lock: WriterLock;
  readonly #options: AuditChainOptions;
  #head: ChainHead;
  #waiting: Waiting[] = [];
  #flight: Promise<void> | null = null;
  #failure: SluiceError | null = null;
  #closing: Promise<void> | null = null;

  private constructor(file: string, handle: FileHandle, lock: WriterLock, head: ChainHead, options: AuditChainOptions) {
    this.file = file;
    this.#handle = handle;
    this.#lock = lock;
    this.#head = head;
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
      handle = await open(file, 'a+', 0o600);
    } catch (error) {
      await lock.release();
      throw unavailable(`cannot open ${file}`, error);
    }
    try {
      const { size } = await handle.stat();
      const resume = await findResumePoint(handle, file, size);
      if (size === 0 && options.fsync) await syncDirectory(dirname(file));
      const chain = new AuditChain(file, handle, lock, resume.head, options);
      if (resume.torn !== null) {
        const moved = await moveTornTail(handle, file, resume.torn, resume.head.seq + 1, new Date());
        const record = await chain.append(recoveryFields(moved));
        chain.#recovery = { ...moved, recordSeq: record.seq };
      }
      return chain;
    } catch (error) {
      await handle.close().catch(() => undefined);
      await lock.release();
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

  /**
   * Seals `fields` as the next record and resolves once it is on disk. Sequence numbers follow
   * call order. AUDIT_RECORD_INVALID rejects only this call; a write failure rejects every waiting
   * append with AUDIT_UNAVAILABLE and all later ones too, so nothing acts on an unrecorded decision.
   */
  append(fields: AuditFields): Promise<AuditRecord> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    if (this.#closing !== null) return Promise.reject(new SluiceError('AUDIT_UNAVAILABLE', `${this.file} is closed`));
    let sealed: SealedRecord;
    try {
      sealed = sealRecord(this.#head.seq + 1, new Date().toISOString(), this.#head.hash, fields);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#head = { seq: sealed.record.seq, hash: sealed.record.hash };
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#waiting.push({ record: sealed.record, line: sealed.line, resolve, reject });
      // Starting the drain on a later microtask lets every append of the current tick join the batch.
      this.#flight ??= Promise.resolve().then(() => this.#drain());
    });
  }

  /** Waits for every accepted append to be durable (or rejected), then closes the file. */
  close(): Promise<void> {
    this.#closing ??= this.#closeWhenDrained();
    return this.#closing;
  }

  async #closeWhenDrained(): Promise<void> {
    while (this.#flight !== null) await this.#flight;
    await this.#handle.close();
    await this.#lock.release();
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0 && this.#failure === null) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        await writeAll(this.#handle, Buffer.from(batch.map((entry) => entry.line).join('')));
        if (this.#options.fsync) await this.#handle.datasync();
      } catch (error) {
        this.#fail(error, batch);
        break;
      }
      for (const entry of batch) entry.resolve(entry.record);
      this.#notify(batch.length);
    }
    this.#flight = null;
  }

  #fail(error: unknown, batch: readonly Waiting[]): void {
    this.#failure = unavailable(`write to ${this.file} failed`, error);
    const failure = this.#failure;
    for (const entry of [...batch, ...this.#waiting]) entry.reject(failure);
    this.#waiting = [];
  }

  #notify(records: number): void {
    try {
      this.#options.onCommitted?.(records);
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
