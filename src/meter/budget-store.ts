// The settled-usage journal in the state directory: one checksummed JSON line per metered call,
// durable (O_DSYNC) before the call counts as settled, so a kill -9 loses none. A damaged line is never
// skipped or reset: the store reports itself unusable and inference is refused until an operator acts.
import { createHash } from 'node:crypto';
import { open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { appendFlags } from '../state-file.js';

export const BUDGET_STORE_FILE = 'inference-usage.jsonl';

export interface UsageRecord {
  /** epoch milliseconds the call settled */
  readonly at: number;
  readonly request_id: string;
  readonly agent: string;
  /** the budgets charged: `agent:NAME`, `group:NAME` */
  readonly subjects: readonly string[];
  readonly model: string;
  readonly input: number;
  readonly output: number;
  /** no usage was reported: a bytes-based estimate or the whole reservation */
  readonly estimated: boolean;
}

export interface StoreContents {
  readonly records: readonly UsageRecord[];
  /** why the file cannot be trusted (line and reason); null when every line checked out */
  readonly failure: string | null;
  /** bytes of a last line cut short by a crash mid-write (never acknowledged, so never settled) */
  readonly tornBytes: number;
}

function checksum(line: string): string {
  return createHash('sha256').update(line).digest('hex').slice(0, 16);
}

function encode(record: UsageRecord): string {
  const body = JSON.stringify(record);
  return `${body.slice(0, -1)},"check":"${checksum(body)}"}\n`;
}

function decode(line: string): UsageRecord {
  const parsed = JSON.parse(line) as Record<string, unknown>;
  const { check, ...record } = parsed;
  if (typeof check !== 'string' || check !== checksum(JSON.stringify(record))) throw new Error('checksum mismatch');
  const fields = record as Partial<UsageRecord>;
  if (typeof fields.at !== 'number' || typeof fields.agent !== 'string' || !Array.isArray(fields.subjects) || typeof fields.input !== 'number' || typeof fields.output !== 'number') {
    throw new Error('missing fields');
  }
  return record as unknown as UsageRecord;
}

/** Reads the journal without changing it (`sluice budget show`, and open below). */
export async function readStore(file: string): Promise<StoreContents> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], failure: null, tornBytes: 0 };
    return { records: [], failure: `${file}: ${(error as Error).message}`, tornBytes: 0 };
  }
  const lines = text.split('\n');
  const last = lines.pop() ?? '';
  const records: UsageRecord[] = [];
  for (const [index, line] of lines.entries()) {
    try {
      records.push(decode(line));
    } catch (error) {
      return { records: [], failure: `${file}:${index + 1}: ${(error as Error).message}; move the file aside or restore it, then restart`, tornBytes: 0 };
    }
  }
  return { records, failure: null, tornBytes: Buffer.byteLength(last) };
}

interface Waiting {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class BudgetStore {
  // Group commit, as the audit chain does: lines that arrive while a durable write runs
  // share the next one, so a burst of settling calls costs a few flushes instead of one each.
  private waiting: Waiting[] = [];
  private flight: Promise<void> | null = null;

  private constructor(
    private readonly handle: FileHandle | null,
    /** set when the file could not be trusted at open or a write failed: inference is refused */
    private failed: string | null,
  ) {}

  static async open(file: string): Promise<{ store: BudgetStore; contents: StoreContents }> {
    const contents = await readStore(file);
    if (contents.failure !== null) return { store: new BudgetStore(null, contents.failure), contents };
    // A last line with no newline was being written when the process died; it was never fsynced
    // and acknowledged, so cutting it loses no settled usage.
    if (contents.tornBytes > 0) {
      const size = Buffer.byteLength(await readFile(file, 'utf8'));
      await truncate(file, size - contents.tornBytes);
    }
    const handle = await open(file, appendFlags(true, 'write-only'), 0o600);
    return { store: new BudgetStore(handle, null), contents };
  }

  get failure(): string | null {
    return this.failed;
  }

  /** Durable once resolved; lines are written in call order and never interleave. */
  append(record: UsageRecord): Promise<void> {
    if (this.handle === null || this.failed !== null) return Promise.reject(new Error(this.failed ?? 'budget store closed'));
    const line = encode(record);
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ line, resolve, reject });
      this.flight ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        if (this.handle === null || this.failed !== null) throw new Error(this.failed ?? 'budget store closed');
        const bytes = Buffer.from(batch.map((entry) => entry.line).join(''));
        // Durable when it returns (O_DSYNC). A short write (a full disk) is a failure: the lines it
        // left out were never stored.
        const { bytesWritten } = await this.handle.write(bytes);
        if (bytesWritten !== bytes.length) throw new Error(`wrote ${bytesWritten} of ${bytes.length} bytes`);
      } catch (error) {
        // After a failed write the file's tail is unknown: refuse until restart re-reads it.
        this.failed ??= `write failed: ${(error as Error).message}`;
        for (const entry of [...batch, ...this.waiting.splice(0)]) entry.reject(error);
        break;
      }
      for (const entry of batch) entry.resolve();
    }
    this.flight = null;
  }

  async close(): Promise<void> {
    if (this.flight !== null) await this.flight;
    await this.handle?.close();
  }
}
