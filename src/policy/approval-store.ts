// The running process's approvals: granted, first used, revoked and expired here, each step
// audited and kept in STATE_DIR/approvals.json (crash-safe) or a fleet's Redis, and every change
// (here or, with Redis, on another replica) published to the live policy as a new immutable index.
import { randomBytes } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { approvalEntry, type ApprovalEntry, type AuditLog } from '../audit/kinds.js';
import type { Clock } from '../clock.js';
import { writeFileAtomic } from '../state-file.js';
import { ApprovalIndex, type Approval } from './approvals.js';

export const APPROVALS_FILE = 'approvals.json';
const FORMAT_VERSION = 1;
// How far apart replicas' clocks may be (NTP keeps them far closer) when telling expiry from revocation.
const CLOCK_SKEW_MS = 5_000;

export interface ApprovalStoreOptions {
  readonly file: string;
  /** where approvals are kept; absent, the file above (this host alone) */
  readonly records?: ApprovalRecords;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** takes the new index into the policy in force */
  readonly publish: (index: ApprovalIndex) => void;
  /** closes what an ended approval let through; returns how many connections it closed */
  readonly cut: (approvalId: string) => number;
  readonly onError: (error: unknown, what: string) => void;
}

export type ApprovalRequest = Omit<Approval, 'id' | 'createdMs' | 'expiresMs'> & { readonly ttlMs: number };

export interface StoredApproval extends Approval {
  readonly firstUsedMs: number | null;
}

/**
 * Where approvals are kept. Each call gets the one approval changed and the whole list after the
 * change: a file rewrites the list, a shared store changes the one entry.
 */
export interface ApprovalRecords {
  /** every approval kept (expired ones too: the store audits and removes them) */
  load(): Promise<StoredApproval[]>;
  added(approval: StoredApproval, all: readonly StoredApproval[]): Promise<void>;
  /** an approval's first use; never brings back one another replica removed meanwhile */
  updated(approval: StoredApproval, all: readonly StoredApproval[]): Promise<void>;
  removed(ids: readonly string[], all: readonly StoredApproval[]): Promise<void>;
  /** calls `changed` when another replica changed the approvals; a file never does */
  watch(changed: () => void): void;
  /** resolves once no write is in flight */
  close(): Promise<void>;
}

/** One approval as kept (`where` names it in errors): every field checked, nothing granted from a bad one. */
export function parseApproval(where: string, raw: unknown): StoredApproval {
  const entry = raw as Record<string, unknown>;
  const text = (field: string): string => {
    const value = entry[field];
    if (typeof value !== 'string') throw new Error(`${where}.${field} is not a string`);
    return value;
  };
  const number = (field: string): number => {
    const value = entry[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${where}.${field} is not a number`);
    return value;
  };
  const port = entry['port'] === null ? null : number('port');
  const ticket = entry['ticket'] === null ? null : text('ticket');
  const firstUsedMs = entry['firstUsedMs'] === null ? null : number('firstUsedMs');
  return {
    id: text('id'),
    agent: text('agent'),
    host: text('host'),
    port,
    approver: text('approver'),
    reason: text('reason'),
    ticket,
    createdMs: number('createdMs'),
    expiresMs: number('expiresMs'),
    overrideBlocklist: entry['overrideBlocklist'] === true,
    firstUsedMs,
  };
}

function parse(file: string, text: string): StoredApproval[] {
  const root = JSON.parse(text) as { version?: unknown; approvals?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.approvals)) throw new Error(`${file}: expected {"version": ${FORMAT_VERSION}, "approvals": [...]}`);
  return root.approvals.map((raw: unknown, index) => parseApproval(`${file}: approvals[${index}]`, raw));
}

/** This host's approvals file: the whole list rewritten atomically on every change. */
class FileApprovals implements ApprovalRecords {
  #writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: string,
    private readonly onError: ApprovalStoreOptions['onError'],
  ) {}

  /** An unreadable file is moved aside (nothing is granted from it) and reported. */
  async load(): Promise<StoredApproval[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    try {
      return parse(this.file, text);
    } catch (error) {
      const aside = `${this.file}.corrupt-${Date.now()}`;
      await rename(this.file, aside);
      this.onError(error, `approvals file unreadable; moved to ${aside}, no approval from it is in force`);
      return [];
    }
  }

  added(_approval: StoredApproval, all: readonly StoredApproval[]): Promise<void> {
    return this.#persist(all);
  }

  updated(_approval: StoredApproval, all: readonly StoredApproval[]): Promise<void> {
    return this.#persist(all);
  }

  removed(_ids: readonly string[], all: readonly StoredApproval[]): Promise<void> {
    return this.#persist(all);
  }

  watch(): void {}

  close(): Promise<void> {
    return this.#writing.catch(() => undefined);
  }

  /** Writes run one after another (a failed one does not stop the next), each with the list it was given. */
  #persist(all: readonly StoredApproval[]): Promise<void> {
    const write = (): Promise<void> => writeFileAtomic(this.file, `${JSON.stringify({ version: FORMAT_VERSION, approvals: all }, null, 2)}\n`);
    this.#writing = this.#writing.then(write, write);
    return this.#writing;
  }
}

export class ApprovalStore {
  #approvals: StoredApproval[] = [];
  #cancelTimer: (() => void) | undefined;

  private constructor(
    private readonly options: ApprovalStoreOptions,
    private readonly records: ApprovalRecords,
  ) {}

  /** Reads what survived the last run; approvals that expired while Sluice was down are audited as expired. */
  static async open(options: ApprovalStoreOptions): Promise<ApprovalStore> {
    const store = new ApprovalStore(options, options.records ?? new FileApprovals(options.file, options.onError));
    store.#approvals = await store.records.load();
    await store.#sweep();
    store.records.watch(() => {
      store.#resync().catch((error: unknown) => options.onError(error, 'approvals could not be re-read; the ones in force are unchanged'));
    });
    return store;
  }

  static fileIn(stateDir: string): string {
    return join(stateDir, APPROVALS_FILE);
  }

  /** The approvals in force at the clock's now. */
  list(): readonly Approval[] {
    const now = this.options.clock.now();
    return this.#approvals.filter((approval) => approval.expiresMs > now);
  }

  /** Grants an approval: in force only once its record is durable and the approval kept. */
  async create(request: ApprovalRequest): Promise<Approval> {
    const now = this.options.clock.now();
    const { ttlMs, ...rest } = request;
    const approval: StoredApproval = { ...rest, id: `apr_${randomBytes(9).toString('base64url')}`, createdMs: now, expiresMs: now + ttlMs, firstUsedMs: null };
    await this.options.audit.append(approvalEntry('create', approval));
    // Kept before it is in force: a restart (or another replica) must not be what takes it away.
    await this.records.added(approval, [...this.#approvals, approval]);
    this.#approvals = [...this.#approvals.filter((candidate) => candidate.id !== approval.id), approval];
    this.#changed();
    return approval;
  }

  /** Ends an approval at once: the policy stops honouring it before anything else happens. */
  async revoke(id: string, by: string): Promise<Approval | undefined> {
    const approval = this.#approvals.find((candidate) => candidate.id === id && candidate.expiresMs > this.options.clock.now());
    if (approval === undefined) return undefined;
    await this.#end([approval], 'revoke', by);
    return approval;
  }

  /** The first request an approval let through is audited; later ones carry its id in their decision. */
  noteUse(id: string, requestId: string): void {
    const approval = this.#approvals.find((candidate) => candidate.id === id);
    if (approval === undefined || approval.firstUsedMs !== null) return;
    const used: StoredApproval = { ...approval, firstUsedMs: this.options.clock.now() };
    this.#approvals = this.#approvals.map((candidate) => (candidate === approval ? used : candidate));
    this.#record(approvalEntry('first_use', used, { request_id: requestId }));
    this.records.updated(used, this.#approvals).catch((error: unknown) => this.options.onError(error, 'approval first use could not be kept'));
  }

  /** Stops the expiry timer and waits for the last write, so nothing is written after close. */
  close(): Promise<void> {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    return this.records.close();
  }

  async #sweep(): Promise<void> {
    const now = this.options.clock.now();
    const expired = this.#approvals.filter((approval) => approval.expiresMs <= now);
    if (expired.length > 0) await this.#end(expired, 'expire', null);
    else this.#changed();
  }

  /**
   * Another replica changed the approvals: take the kept list as it is now. One that disappeared
   * before its expiry was revoked there; its connections through this replica are cut here too.
   */
  async #resync(): Promise<void> {
    const kept = await this.records.load();
    const ids = new Set(kept.map((approval) => approval.id));
    const now = this.options.clock.now();
    const gone = this.#approvals.filter((approval) => !ids.has(approval.id));
    this.#approvals = kept;
    this.#changed();
    for (const approval of gone) {
      const cut = this.options.cut(approval.id);
      // A replica whose clock runs a little ahead ended it on expiry, not a human.
      if (approval.expiresMs - now <= CLOCK_SKEW_MS) this.#record(approvalEntry('expire', approval, { connections_cut: cut }));
      else this.#record(approvalEntry('revoke', approval, { connections_cut: cut, revoked_by: 'another replica' }));
    }
  }

  async #end(ended: readonly StoredApproval[], action: 'revoke' | 'expire', by: string | null): Promise<void> {
    this.#approvals = this.#approvals.filter((approval) => !ended.includes(approval));
    this.#changed();
    for (const approval of ended) {
      const cut = this.options.cut(approval.id);
      this.#record(approvalEntry(action, approval, { connections_cut: cut, ...(by === null ? {} : { revoked_by: by }) }));
    }
    await this.records.removed(ended.map((approval) => approval.id), this.#approvals);
  }

  #record(entry: ApprovalEntry): void {
    this.options.audit.append(entry).catch((error: unknown) => this.options.onError(error, `approval ${entry.action} could not be audited`));
  }

  /** Publishes the index and re-arms the timer for the next expiry. */
  #changed(): void {
    this.options.publish(new ApprovalIndex(this.#approvals));
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#approvals.length === 0) return;
    const next = Math.min(...this.#approvals.map((approval) => approval.expiresMs));
    this.#cancelTimer = this.options.clock.after(Math.max(0, next - this.options.clock.now()), () => {
      this.#sweep().catch((error: unknown) => this.options.onError(error, 'expired approvals could not be removed'));
    });
  }
}
