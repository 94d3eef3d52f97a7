// The running process's approvals: granted, first used, revoked and expired here, each step
// audited and kept in STATE_DIR/approvals.json (crash-safe), and every change published to the
// live policy as a new immutable index.
import { randomBytes } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { approvalEntry, type ApprovalEntry, type AuditLog } from '../audit/kinds.js';
import type { Clock } from '../clock.js';
import { writeFileAtomic } from '../state-file.js';
import { ApprovalIndex, type Approval } from './approvals.js';

export const APPROVALS_FILE = 'approvals.json';
const FORMAT_VERSION = 1;

export interface ApprovalStoreOptions {
  readonly file: string;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** takes the new index into the policy in force */
  readonly publish: (index: ApprovalIndex) => void;
  /** closes what an ended approval let through; returns how many connections it closed */
  readonly cut: (approvalId: string) => number;
  readonly onError: (error: unknown, what: string) => void;
}

export type ApprovalRequest = Omit<Approval, 'id' | 'createdMs' | 'expiresMs'> & { readonly ttlMs: number };

interface Stored extends Approval {
  readonly firstUsedMs: number | null;
}

function parse(file: string, text: string): Stored[] {
  const root = JSON.parse(text) as { version?: unknown; approvals?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.approvals)) throw new Error(`${file}: expected {"version": ${FORMAT_VERSION}, "approvals": [...]}`);
  return root.approvals.map((raw: unknown, index) => {
    const entry = raw as Record<string, unknown>;
    const text = (field: string): string => {
      const value = entry[field];
      if (typeof value !== 'string') throw new Error(`${file}: approvals[${index}].${field} is not a string`);
      return value;
    };
    const number = (field: string): number => {
      const value = entry[field];
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${file}: approvals[${index}].${field} is not a number`);
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
  });
}

export class ApprovalStore {
  #approvals: Stored[] = [];
  #cancelTimer: (() => void) | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(private readonly options: ApprovalStoreOptions) {}

  /**
   * Reads what survived the last run; approvals that expired while Sluice was down are audited as
   * expired. An unreadable file is moved aside (nothing is granted from it) and reported.
   */
  static async open(options: ApprovalStoreOptions): Promise<ApprovalStore> {
    const store = new ApprovalStore(options);
    let text: string | undefined;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (text !== undefined) {
      try {
        store.#approvals = parse(options.file, text);
      } catch (error) {
        const aside = `${options.file}.corrupt-${Date.now()}`;
        await rename(options.file, aside);
        options.onError(error, `approvals file unreadable; moved to ${aside}, no approval from it is in force`);
      }
    }
    await store.#sweep();
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

  /** Grants an approval: in force only once its record is durable and the file written. */
  async create(request: ApprovalRequest): Promise<Approval> {
    const now = this.options.clock.now();
    const { ttlMs, ...rest } = request;
    const approval: Stored = { ...rest, id: `apr_${randomBytes(9).toString('base64url')}`, createdMs: now, expiresMs: now + ttlMs, firstUsedMs: null };
    await this.options.audit.append(approvalEntry('create', approval));
    this.#approvals = [...this.#approvals, approval];
    try {
      await this.#persist();
    } catch (error) {
      // Not on disk, not in force: a restart must not be what takes an approval away.
      this.#approvals = this.#approvals.filter((candidate) => candidate !== approval);
      throw error;
    }
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
    const used: Stored = { ...approval, firstUsedMs: this.options.clock.now() };
    this.#approvals = this.#approvals.map((candidate) => (candidate === approval ? used : candidate));
    this.#record(approvalEntry('first_use', used, { request_id: requestId }));
    this.#persist().catch((error: unknown) => this.options.onError(error, 'approvals file could not be written'));
  }

  close(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  async #sweep(): Promise<void> {
    const now = this.options.clock.now();
    const expired = this.#approvals.filter((approval) => approval.expiresMs <= now);
    if (expired.length > 0) await this.#end(expired, 'expire', null);
    else this.#changed();
  }

  async #end(ended: readonly Stored[], action: 'revoke' | 'expire', by: string | null): Promise<void> {
    this.#approvals = this.#approvals.filter((approval) => !ended.includes(approval));
    this.#changed();
    for (const approval of ended) {
      const cut = this.options.cut(approval.id);
      this.#record(approvalEntry(action, approval, { connections_cut: cut, ...(by === null ? {} : { revoked_by: by }) }));
    }
    await this.#persist();
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

  /** Writes run one after another (a failed one does not stop the next), each with the list as it is then. */
  #persist(): Promise<void> {
    const write = (): Promise<void> => writeFileAtomic(this.options.file, `${JSON.stringify({ version: FORMAT_VERSION, approvals: this.#approvals }, null, 2)}\n`);
    this.#writing = this.#writing.then(write, write);
    return this.#writing;
  }
}
