// Remembers which (host, port, agent) triples Learn mode let through, persisted as JSON with
// debounced atomic writes, so an operator can turn observed traffic into allow rules.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The store's file name inside the state directory. */
export const LEARN_STORE_FILE = 'learn.json';

export interface LearnRecord {
  readonly agent: string;
  readonly host: string;
  readonly port: number;
  readonly at: Date;
}

export interface LearnEntry {
  readonly host: string;
  readonly port: number;
  readonly agent: string;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  readonly count: number;
}

/** What happened to an unreadable store on open: it is kept aside for inspection, never wiped. */
export interface CorruptStore {
  readonly movedTo: string | null;
  readonly reason: string;
}

export interface LearnStoreOptions {
  /** debounce interval for writes; records within it share one write */
  readonly flushMs?: number;
  /** new triples past this many are counted in `dropped` instead of stored, bounding memory */
  readonly maxEntries?: number;
  /** for CLI readers: never write, never move a corrupt file */
  readonly readOnly?: boolean;
}

interface MutableEntry {
  host: string;
  port: number;
  agent: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
}

const FORMAT_VERSION = 1;

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function keyOf(host: string, port: number, agent: string): string {
  return `${host}\u0000${port}\u0000${agent}`;
}

function parseEntries(text: string): MutableEntry[] {
  const data: unknown = JSON.parse(text);
  const root = data as { version?: unknown; entries?: unknown } | null;
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.entries)) {
    throw new Error(`expected {"version": ${FORMAT_VERSION}, "entries": [...]}`);
  }
  return root.entries.map((raw: unknown, index) => {
    const item = raw as Record<string, unknown> | null;
    const firstSeen = Date.parse(String(item?.['first_seen']));
    const lastSeen = Date.parse(String(item?.['last_seen']));
    const { host, port, agent, count } = item ?? {};
    if (typeof host !== 'string' || typeof agent !== 'string' || !Number.isInteger(port) || !Number.isInteger(count) || Number.isNaN(firstSeen) || Number.isNaN(lastSeen)) {
      throw new Error(`entry ${index} is malformed`);
    }
    return { host, port: port as number, agent, firstSeen, lastSeen, count: count as number };
  });
}

export class LearnStore {
  /** set when the file on disk could not be read as a store at open */
  readonly corrupt: CorruptStore | null;
  /** records refused because the store was full */
  dropped = 0;
  private readonly entriesByKey = new Map<string, MutableEntry>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private closed = false;
  private lastError: Error | null = null;

  private constructor(
    private readonly file: string,
    private readonly options: Required<LearnStoreOptions>,
    entries: readonly MutableEntry[],
    corrupt: CorruptStore | null,
  ) {
    for (const entry of entries) this.entriesByKey.set(keyOf(entry.host, entry.port, entry.agent), entry);
    this.corrupt = corrupt;
  }

  static async open(file: string, options: LearnStoreOptions = {}): Promise<LearnStore> {
    const settings = { flushMs: options.flushMs ?? 1000, maxEntries: options.maxEntries ?? 50_000, readOnly: options.readOnly ?? false };
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new LearnStore(file, settings, [], null);
      throw error;
    }
    try {
      return new LearnStore(file, settings, parseEntries(text), null);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      let movedTo: string | null = null;
      if (!settings.readOnly) {
        movedTo = `${file}.corrupt-${Date.now()}`;
        await rename(file, movedTo);
      }
      return new LearnStore(file, settings, [], { movedTo, reason });
    }
  }

  record(record: LearnRecord): void {
    if (this.closed || this.options.readOnly) return;
    const at = record.at.getTime();
    const key = keyOf(record.host, record.port, record.agent);
    const entry = this.entriesByKey.get(key);
    if (entry !== undefined) {
      entry.count += 1;
      entry.firstSeen = Math.min(entry.firstSeen, at);
      entry.lastSeen = Math.max(entry.lastSeen, at);
    } else if (this.entriesByKey.size >= this.options.maxEntries) {
      this.dropped += 1;
      return;
    } else {
      this.entriesByKey.set(key, { host: record.host, port: record.port, agent: record.agent, firstSeen: at, lastSeen: at, count: 1 });
    }
    this.dirty = true;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.options.flushMs);
      this.timer.unref();
    }
  }

  entries(): LearnEntry[] {
    return [...this.entriesByKey.values()]
      .map((entry) => ({ ...entry, firstSeen: new Date(entry.firstSeen), lastSeen: new Date(entry.lastSeen) }))
      .sort((a, b) => compareText(a.host, b.host) || a.port - b.port || compareText(a.agent, b.agent));
  }

  /** Forgets what was recorded for one agent (written at the next flush); returns how many entries went. */
  clear(agent: string): number {
    if (this.options.readOnly) return 0;
    let removed = 0;
    for (const [key, entry] of this.entriesByKey) {
      if (entry.agent !== agent) continue;
      this.entriesByKey.delete(key);
      removed += 1;
    }
    if (removed > 0) this.dirty = true;
    return removed;
  }

  /** The last write failure, if the most recent write did not succeed (the data stays in memory). */
  get writeError(): Error | null {
    return this.lastError;
  }

  /** Writes pending changes now; writes never overlap. */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.writeIfDirty());
    return this.writing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Temp file in the same directory, then rename: a crash leaves the old or the new store, never half. */
  private async writeIfDirty(): Promise<void> {
    if (!this.dirty || this.options.readOnly) return;
    this.dirty = false;
    const body = JSON.stringify({
      version: FORMAT_VERSION,
      entries: [...this.entriesByKey.values()].map((entry) => ({
        host: entry.host,
        port: entry.port,
        agent: entry.agent,
        first_seen: new Date(entry.firstSeen).toISOString(),
        last_seen: new Date(entry.lastSeen).toISOString(),
        count: entry.count,
      })),
    });
    const temp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(dirname(this.file), { recursive: true });
      await writeFile(temp, `${body}\n`, { mode: 0o600 });
      await rename(temp, this.file);
      this.lastError = null;
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      this.dirty = true;
      this.lastError = error instanceof Error ? error : new Error(String(error));
    }
  }
}
