// The bundle state directory: the highest version ever accepted (so a restart cannot be talked
// into a downgrade) and the last-known-good bundles with their evidence, written atomically.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { SluiceError } from '../../errors.js';
import type { AcceptedBundle, Candidate, VersionFloor } from './accept.js';
import { evidenceFromJson, evidenceToJson } from './evidence.js';
import { messageOf } from './public-key.js';
import { isRecord } from './trusted-root.js';

/**
 * A state file exists but cannot be read or parsed. Reading it as "no state" would forget the
 * floor and let an old signed bundle back in, so the manager denies everything instead.
 */
export class BundleStateError extends SluiceError {
  constructor(path: string, why: string, options?: { cause?: unknown }) {
    super('BUNDLE_STATE_UNREADABLE', `${path}: ${why}; repair it or, to start over without a downgrade floor, delete it (bundle.min_version can pin one)`, options);
  }
}

export interface PersistedState {
  readonly floor: VersionFloor | undefined;
  /** the last time the source delivered or confirmed a verified bundle */
  readonly lastSuccessAt: Date | undefined;
}

export type Slot = 'active' | 'shadow';

export interface StoredState extends PersistedState {
  readonly active: Candidate | undefined;
  readonly shadow: Candidate | undefined;
}

export class BundleStateStore {
  constructor(readonly dir: string) {}

  /** Every file, read before any is used, so a bad one leaves nothing half-restored. */
  async readAll(): Promise<StoredState> {
    const [state, active, shadow] = await Promise.all([this.readState(), this.readSlot('active'), this.readSlot('shadow')]);
    return { ...state, active, shadow };
  }

  /** No state.json is a first start; one that does not read as written here throws BundleStateError. */
  async readState(): Promise<PersistedState> {
    const json = await this.readJson('state.json');
    if (json === undefined) return { floor: undefined, lastSuccessAt: undefined };
    const bad = (why: string): BundleStateError => new BundleStateError(join(this.dir, 'state.json'), why);
    if (!isRecord(json)) throw bad('not a JSON object');
    const { highest_version: version, highest_sha256: sha256, last_success_at: last } = json;
    let floor: VersionFloor | undefined;
    if (typeof version === 'number' && Number.isSafeInteger(version) && typeof sha256 === 'string') floor = { version, sha256 };
    else if (version !== null || sha256 !== null) throw bad('highest_version and highest_sha256 are neither a version and its digest nor both null');
    if (last !== null && (typeof last !== 'string' || Number.isNaN(Date.parse(last)))) throw bad('last_success_at is not a timestamp');
    return { floor, lastSuccessAt: last === null ? undefined : new Date(last) };
  }

  async writeState(state: PersistedState): Promise<void> {
    await this.writeJson('state.json', {
      highest_version: state.floor?.version ?? null,
      highest_sha256: state.floor?.sha256 ?? null,
      last_success_at: state.lastSuccessAt?.toISOString() ?? null,
    });
  }

  /** The stored candidate of a slot, or undefined when there is none; throws BundleStateError if unreadable. */
  async readSlot(slot: Slot): Promise<Candidate | undefined> {
    const json = await this.readJson(`${slot}.json`);
    // null is what writeSlot leaves behind when it empties a slot.
    if (json === undefined || json === null) return undefined;
    const path = join(this.dir, `${slot}.json`);
    if (!isRecord(json) || typeof json['artifact'] !== 'string' || typeof json['origin'] !== 'string') throw new BundleStateError(path, 'not a stored bundle');
    try {
      return { artifact: Buffer.from(json['artifact'], 'base64'), evidence: evidenceFromJson(json['evidence']), origin: json['origin'] };
    } catch (error) {
      throw new BundleStateError(path, `its signature material does not parse (${messageOf(error)})`, { cause: error });
    }
  }

  async writeSlot(slot: Slot, bundle: AcceptedBundle | undefined): Promise<void> {
    const value =
      bundle === undefined
        ? null
        : {
            version: bundle.document.version,
            sha256: bundle.sha256,
            origin: bundle.candidate.origin,
            artifact: bundle.candidate.artifact.toString('base64'),
            evidence: evidenceToJson(bundle.candidate.evidence),
          };
    await this.writeJson(`${slot}.json`, value);
  }

  /** undefined only when the file is absent; unreadable or non-JSON content throws. */
  private async readJson(name: string): Promise<unknown> {
    const path = join(this.dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new BundleStateError(path, `cannot be read (${messageOf(error)})`, { cause: error });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new BundleStateError(path, `is not valid JSON (${messageOf(error)})`, { cause: error });
    }
  }

  /** write, fsync, rename, fsync the directory: a crash leaves the old file or the new one, never half. */
  private async writeJson(name: string, value: unknown): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, name);
    const temporary = `${path}.${process.pid}.tmp`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(value)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, path);
    const directory = await open(this.dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  }
}
