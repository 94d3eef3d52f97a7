// This host's access requests: the whole list in STATE_DIR/access-requests.json, rewritten
// crash-safe (write, fsync, rename, fsync the directory) on each save.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseRequest, requestRecord, type AccessRequest, type AccessRequestRecords, type Mutable } from './access-request-records.js';

/** The store's file name inside the state directory. */
export const ACCESS_REQUESTS_FILE = 'access-requests.json';

const FORMAT_VERSION = 1;

function parseRequests(text: string): Mutable<AccessRequest>[] {
  const root = JSON.parse(text) as { version?: unknown; requests?: unknown } | null;
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.requests)) {
    throw new Error(`expected {"version": ${FORMAT_VERSION}, "requests": [...]}`);
  }
  return root.requests.map((raw: unknown, index) => parseRequest(raw, `request ${index}`));
}

export class FileAccessRequests implements AccessRequestRecords {
  constructor(private readonly file: string) {}

  /** An unreadable file is kept aside, never wiped, and the store starts empty. */
  async load(): ReturnType<AccessRequestRecords['load']> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { requests: [], corrupt: null };
      throw error;
    }
    try {
      return { requests: parseRequests(text), corrupt: null };
    } catch (error) {
      const movedTo = `${this.file}.corrupt-${Date.now()}`;
      await rename(this.file, movedTo);
      return { requests: [], corrupt: { movedTo, reason: error instanceof Error ? error.message : String(error) } };
    }
  }

  /** Every created request is new here: one host has no one to race. */
  async save(changes: Parameters<AccessRequestRecords['save']>[0], all: readonly AccessRequest[]): Promise<readonly AccessRequest[]> {
    const body = JSON.stringify({ version: FORMAT_VERSION, requests: all.map(requestRecord) });
    const directory = dirname(this.file);
    const temporary = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(`${body}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.file);
      const dir = await open(directory, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    return changes.created;
  }

  watch(): void {}

  close(): void {}
}
