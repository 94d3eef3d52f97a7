// The bundle state directory: the highest version ever accepted (so a restart cannot be talked
// into a downgrade) and the last-known-good bundles with their evidence, written atomically.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { AcceptedBundle, Candidate, VersionFloor } from './accept.js';
import { evidenceFromJson, evidenceToJson } from './evidence.js';
import { isRecord } from './trusted-root.js';

export interface PersistedState {
  readonly floor: VersionFloor | undefined;
  /** the last time the source delivered or confirmed a verified bundle */
  readonly lastSuccessAt: Date | undefined;
}

export type Slot = 'active' | 'shadow';

export class BundleStateStore {
  constructor(readonly dir: string) {}

  async readState(): Promise<PersistedState> {
    const json = await this.readJson('state.json');
    if (!isRecord(json)) return { floor: undefined, lastSuccessAt: undefined };
    const { highest_version: version, highest_sha256: sha256, last_success_at: last } = json;
    const floor = typeof version === 'number' && typeof sha256 === 'string' ? { version, sha256 } : undefined;
    const lastSuccessAt = typeof last === 'string' && !Number.isNaN(Date.parse(last)) ? new Date(last) : undefined;
    return { floor, lastSuccessAt };
  }

  async writeState(state: PersistedState): Promise<void> {
    await this.writeJson('state.json', {
      highest_version: state.floor?.version ?? null,
      highest_sha256: state.floor?.sha256 ?? null,
      last_success_at: state.lastSuccessAt?.toISOString() ?? null,
    });
  }

  /** The stored candidate of a slot, or undefined when there is none or it is unreadable. */
  async readSlot(slot: Slot): Promise<Candidate | undefined> {
    const json = await this.readJson(`${slot}.json`);
    if (!isRecord(json) || typeof json['artifact'] !== 'string' || typeof json['origin'] !== 'string') return undefined;
    try {
      return { artifact: Buffer.from(json['artifact'], 'base64'), evidence: evidenceFromJson(json['evidence']), origin: json['origin'] };
    } catch {
      return undefined;
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

  private async readJson(name: string): Promise<unknown> {
    try {
      return JSON.parse(await readFile(join(this.dir, name), 'utf8'));
    } catch {
      return undefined;
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
