// The SIEM stream's persistent cursor: the seq and hash of the last record the receiver
// acknowledged, replaced atomically (write, sync, rename, sync the directory) so a crash keeps one.
import { open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GENESIS_PREV, type ChainHead } from '../record.js';
import { syncDirectory } from '../recovery.js';

export const START_OF_CHAIN: ChainHead = { seq: 0, hash: GENESIS_PREV };

export type LoadedCursor =
  | { readonly kind: 'saved'; readonly cursor: ChainHead }
  | { readonly kind: 'absent' }
  /** unreadable: the stream starts over (duplicates, never a gap) and the caller logs why */
  | { readonly kind: 'unreadable'; readonly detail: string };

export class StreamCursor {
  readonly file: string;
  readonly #fsync: boolean;

  constructor(file: string, options: { readonly fsync: boolean }) {
    this.file = file;
    this.#fsync = options.fsync;
  }

  async load(): Promise<LoadedCursor> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
      return { kind: 'unreadable', detail: error instanceof Error ? error.message : String(error) };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { kind: 'unreadable', detail: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
    }
    const { seq, hash } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
      return { kind: 'unreadable', detail: 'expected {"seq": <integer ≥ 0>, "hash": <64 hex digits>}' };
    }
    return { kind: 'saved', cursor: { seq, hash } };
  }

  async save(cursor: ChainHead): Promise<void> {
    const temporary = `${this.file}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify({ seq: cursor.seq, hash: cursor.hash })}\n`);
      if (this.#fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    if (this.#fsync) await syncDirectory(dirname(this.file));
  }
}
