// The audit log as the application holds it: one hash chain across rotated files, signed by
// checkpoints every N records or T seconds and at shutdown, with old files deleted by retention.
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { SluiceError } from '../errors.js';
import { AuditChain, type AuditChainOptions, type ChainFailure } from './chain.js';
import { checkpointEntry } from './checkpoint.js';
import type { AppendUrgency, AuditEntry, AuditLog, AuditRetentionEntry, CheckpointTrigger } from './kinds.js';
import { activeChainFiles, firstRecord, lastRecord, rotatedName, type ChainFile } from './reader.js';
import type { AuditRecord, ChainHead } from './record.js';
import { syncDirectory } from './recovery.js';
import { realTimer, type Schedule, type Scheduled } from './schedule.js';
import type { LoadedSigningKeys, SigningKey } from './signing-key.js';

export interface AuditTrailOptions {
  readonly keys: LoadedSigningKeys;
  readonly checkpoint: { readonly everyRecords: number; readonly everySeconds: number };
  /** rotate once the active file holds this many bytes (null: never by size), and at each new UTC day */
  readonly rotate: { readonly maxBytes: number | null; readonly daily: boolean };
  /** delete the oldest rotated files beyond this age or total size (null: no limit) */
  readonly retain: { readonly maxAgeDays: number | null; readonly maxTotalBytes: number | null };
  /**
   * The first seq not yet delivered off the machine (the SIEM stream's); retention keeps the file
   * holding it and every later one whatever the limits, and says so through `onRetentionHeld`.
   */
  readonly undeliveredFrom?: () => number;
  readonly onRetentionHeld?: (file: string, undeliveredFrom: number) => void;
  /** the checkpoint interval's timer; tests pass a manual one */
  readonly schedule?: Schedule;
  /** the clock rotation and retention go by; tests pass a manual one */
  readonly now?: () => Date;
}

const DAY_MS = 86_400_000;

function nextUtcMidnight(ms: number): number {
  return (Math.floor(ms / DAY_MS) + 1) * DAY_MS;
}

export class AuditTrail implements AuditLog {
  readonly file: string;
  readonly #chainOptions: AuditChainOptions;
  readonly #options: AuditTrailOptions;
  readonly #now: () => Date;
  /** the same clock as epoch ms, without a Date per append */
  readonly #nowMs: () => number;
  #chain: AuditChain;
  #key: SigningKey;
  /** epoch ms of the UTC midnight after the active file's first record; null while it is empty */
  #dayEnds: number | null;
  #fileFirstSeq: number | null;
  /** seq of the last checkpoint appended; the head minus it is how many records wait unsigned */
  #signedSeq = 0;
  /** set while the active file is being rotated: appends wait for it, in call order */
  #rotating: Promise<void> | null = null;
  #rotationError: SluiceError | null = null;
  #timer: Scheduled | null = null;
  #closing: Promise<void> | null = null;

  private constructor(file: string, chain: AuditChain, first: AuditRecord | null, chainOptions: AuditChainOptions, options: AuditTrailOptions) {
    this.file = file;
    this.#chain = chain;
    this.#chainOptions = chainOptions;
    this.#options = options;
    const now = options.now;
    this.#now = now ?? (() => new Date());
    this.#nowMs = now === undefined ? Date.now : () => now().getTime();
    this.#key = options.keys.current;
    this.#dayEnds = first === null ? null : nextUtcMidnight(Date.parse(first.ts));
    this.#fileFirstSeq = first?.seq ?? null;
  }

  /**
   * Opens the active file, continuing the chain from the last rotated file when it is empty; then
   * announces a staged successor key (signed by the current one), signs the resumed head, and
   * applies retention.
   */
  static async open(file: string, chainOptions: AuditChainOptions, options: AuditTrailOptions): Promise<AuditTrail> {
    const files = await activeChainFiles(file).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    });
    const active = files.at(-1)?.path === file ? files.at(-1) : undefined;
    let continueFrom: ChainHead | undefined;
    let previousLast: AuditRecord | null = null;
    if (active === undefined || active.firstSeq === null) {
      const previous = files.filter((candidate) => candidate.path !== file).at(-1);
      previousLast = previous === undefined ? null : await lastRecord(previous.path);
      if (previousLast !== null) continueFrom = { seq: previousLast.seq, hash: previousLast.hash };
    }
    const chain = await AuditChain.open(file, continueFrom === undefined ? chainOptions : { ...chainOptions, continueFrom });
    const trail = new AuditTrail(file, chain, await firstRecord(file), chainOptions, options);
    try {
      // Whatever the last run left after its last checkpoint (a crash skips the shutdown one) is signed now.
      const resumed = continueFrom === undefined ? await lastRecord(file) : previousLast;
      await trail.#startSigning(resumed !== null && resumed.kind !== 'checkpoint');
      await trail.#applyRetention();
    } catch (error) {
      await chain.close().catch(() => undefined);
      throw error;
    }
    trail.#armTimer();
    return trail;
  }

  get head(): ChainHead {
    return this.#chain.head;
  }

  get failure(): ChainFailure | null {
    return this.#chain.failure;
  }

  get recovery(): AuditChain['recovery'] {
    return this.#chain.recovery;
  }

  /** The public key signing checkpoints now (after a rotation announced at start, the new one). */
  get publicKey(): string {
    return this.#key.publicKey;
  }

  append(entry: AuditEntry, urgency: AppendUrgency = 'now'): Promise<AuditRecord> {
    if (this.#rotating === null && this.#closing === null && (this.#rotationError !== null || this.#rotationDue())) {
      this.#rotating = this.#rotate().finally(() => {
        this.#rotating = null;
      });
    }
    // Appends made while the file rotates wait for it; their callbacks run in call order.
    return this.#rotating === null ? this.#appendNow(entry, urgency) : this.#rotating.then(() => this.#appendNow(entry, urgency));
  }

  #appendNow(entry: AuditEntry, urgency: AppendUrgency): Promise<AuditRecord> {
    if (this.#rotationError !== null) return Promise.reject(this.#rotationError);
    // Checked before as well as after: records the chain adds by itself (audit_recovery) count too,
    // so no run of unsigned records ever exceeds everyRecords (the verifier's --window).
    this.#checkpointIfDue();
    const appended = this.#chain.append(entry, urgency);
    this.#dayEnds ??= nextUtcMidnight(this.#nowMs());
    this.#checkpointIfDue();
    return appended;
  }

  get #unsigned(): number {
    return this.#chain.head.seq - this.#signedSeq;
  }

  #checkpointIfDue(): void {
    if (this.#unsigned >= this.#options.checkpoint.everyRecords) void this.#checkpoint('records').catch(() => undefined);
  }

  /** Signs the head at shutdown, then closes the file once everything is durable. */
  close(): Promise<void> {
    this.#timer?.cancel();
    this.#closing ??= (async () => {
      while (this.#rotating !== null) await this.#rotating;
      if (this.#chain.head.seq > 0) await this.#checkpoint('shutdown').catch(() => undefined);
      await this.#chain.close();
    })();
    return this.#closing;
  }

  /** Appends a checkpoint over the head as it stands: sealed in this same tick, so it signs exactly the record it follows. */
  #checkpoint(trigger: CheckpointTrigger, next?: SigningKey): Promise<AuditRecord> {
    const appended = this.#chain.append(checkpointEntry(this.#key, this.#chain.head, trigger, this.#now(), next));
    this.#signedSeq = this.#chain.head.seq;
    return appended;
  }

  async #startSigning(unsignedTail: boolean): Promise<void> {
    const { next } = this.#options.keys;
    if (next !== null) {
      // Announced under the old key first, durably, so a verifier trusting only the old key can follow.
      await this.#checkpoint('key_rotation', next);
      await this.#options.keys.promote(this.#now());
      this.#key = next;
    } else if (unsignedTail) {
      await this.#checkpoint('start');
    } else {
      this.#signedSeq = this.#chain.head.seq;
    }
  }

  #armTimer(): void {
    const schedule = this.#options.schedule ?? realTimer;
    this.#timer = schedule(() => {
      if (this.#closing !== null) return;
      if (this.#unsigned > 0 && this.#rotating === null) void this.#checkpoint('interval').catch(() => undefined);
      this.#armTimer();
    }, this.#options.checkpoint.everySeconds * 1000);
  }

  #rotationDue(): boolean {
    const { maxBytes, daily } = this.#options.rotate;
    if (maxBytes !== null && this.#chain.bytes >= maxBytes) return true;
    // One number compared per append: the day boundary is computed once per file.
    return daily && this.#dayEnds !== null && this.#nowMs() >= this.#dayEnds;
  }

  /**
   * Ends the active file with a rotation checkpoint, renames it after its first seq and opens a
   * fresh active file whose first record chains to that checkpoint. A failure leaves the chain
   * on the old file (reopened) and refuses appends until the next append retries.
   */
  async #rotate(): Promise<void> {
    try {
      await this.#checkpoint('rotation');
    } catch {
      return; // the chain failed the write and retries it itself; rotation waits for a later append
    }
    const head = this.#chain.head;
    try {
      await this.#chain.close();
      const firstSeq = this.#fileFirstSeq ?? (await firstRecord(this.file))?.seq ?? head.seq;
      await rename(this.file, rotatedName(this.file, firstSeq));
      if (this.#chainOptions.fsync) await syncDirectory(dirname(this.file));
      this.#chain = await AuditChain.open(this.file, { ...this.#chainOptions, continueFrom: head });
      this.#dayEnds = null;
      this.#fileFirstSeq = null;
      this.#rotationError = null;
    } catch (error) {
      this.#rotationError = new SluiceError('AUDIT_UNAVAILABLE', `rotating ${this.file} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      this.#chainOptions.onWriteError?.(error);
      // Keep writing somewhere: whichever file is now at the active path resumes the chain.
      this.#chain = await AuditChain.open(this.file, { ...this.#chainOptions, continueFrom: head }).catch(() => this.#chain);
      return;
    }
    this.#fileFirstSeq = head.seq + 1;
    await this.#applyRetention().catch((error: unknown) => this.#chainOptions.onWriteError?.(error));
  }

  /**
   * Deletes the oldest rotated files past the age or total-size limit, a prefix of the chain only
   * (so what remains still verifies), each deletion recorded and checkpointed before the unlink.
   */
  async #applyRetention(): Promise<void> {
    const { maxAgeDays, maxTotalBytes } = this.#options.retain;
    if (maxAgeDays === null && maxTotalBytes === null) return;
    const files = await activeChainFiles(this.file);
    const rotated = files.filter((file) => file.path !== this.file);
    let total = files.reduce((sum, file) => sum + file.bytes, 0);
    const now = this.#now().getTime();
    const doomed: { file: ChainFile; reason: AuditRetentionEntry['reason'] }[] = [];
    const undeliveredFrom = this.#options.undeliveredFrom?.() ?? null;
    for (const [index, file] of rotated.entries()) {
      const reason = maxAgeDays !== null && now - file.modified.getTime() > maxAgeDays * DAY_MS ? 'max_age'
        : maxTotalBytes !== null && total > maxTotalBytes ? 'max_total_bytes' : null;
      if (reason === null) break;
      if (undeliveredFrom !== null && (await this.#lastSeq(file, files[index + 1])) >= undeliveredFrom) {
        // Deleting it would lose records the SIEM never received: the disk limit yields to the auditor.
        this.#options.onRetentionHeld?.(file.path, undeliveredFrom);
        break;
      }
      doomed.push({ file, reason });
      total -= file.bytes;
    }
    if (doomed.length === 0) return;
    for (const { file, reason } of doomed) {
      const last = await lastRecord(file.path);
      if (last === null || file.firstSeq === null) continue;
      void this.#appendNow({ kind: 'audit_retention', file: basename(file.path), first_seq: file.firstSeq, last_seq: last.seq, last_hash: last.hash, bytes: file.bytes, reason }, 'now').catch(() => undefined);
    }
    await this.#checkpoint('retention');
    for (const { file } of doomed) await unlink(file.path);
    if (this.#chainOptions.fsync) await syncDirectory(dirname(this.file));
  }

  /** A rotated file's last seq: one before the next file's first, or read from its end when the next is empty. */
  async #lastSeq(file: ChainFile, next: ChainFile | undefined): Promise<number> {
    if (next?.firstSeq != null) return next.firstSeq - 1;
    return (await lastRecord(file.path))?.seq ?? Number.POSITIVE_INFINITY;
  }
}
