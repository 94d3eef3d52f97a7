// A bundle published to a real file (signature beside it, replaced by rename like deploy tools)
// and BundleManagers over it with a state directory of their own, removed after the test.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBundleSource } from '../../src/policy/bundle/file-source.js';
import { BundleManager, type BundleManagerOptions } from '../../src/policy/bundle/manager.js';
import type { OfflineMode } from '../../src/policy/bundle/offline-policy.js';
import { bundleYaml, makeKey, signBase64, type BundleFields, type TestKey } from './bundle-fixtures.js';
import { Recorder } from './bundle-harness.js';

export interface BundleFileFixture {
  readonly dir: string;
  readonly path: string;
  readonly stateDir: string;
  publish(fields: BundleFields, key?: TestKey): Promise<void>;
  manager(options?: Partial<BundleManagerOptions> & { mode?: OfflineMode; keys?: TestKey[] }): { manager: BundleManager; recorder: Recorder };
  /** An earlier run: a manager with the defaults starts (accepting what is published) and stops. */
  runOnce(): Promise<void>;
}

/** The key every fixture trusts unless a test lists others. */
export const signer = makeKey('signer.pub');

export async function bundleFileFixture(t: { after: (fn: () => unknown) => void }): Promise<BundleFileFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-bundle-file-'));
  const path = join(dir, 'allowlist.yaml');
  const managers: BundleManager[] = [];
  t.after(async () => {
    managers.forEach((manager) => manager.stop());
    await rm(dir, { recursive: true, force: true });
  });
  const fixture: BundleFileFixture = {
    dir,
    path,
    stateDir: join(dir, 'state'),
    async publish(fields, key = signer) {
      const text = bundleYaml(fields);
      // Signature first, so the pair is never half-new for long.
      await writeFile(`${path}.sig.tmp`, signBase64(key, text));
      await rename(`${path}.sig.tmp`, `${path}.sig`);
      await writeFile(`${path}.tmp`, text);
      await rename(`${path}.tmp`, path);
    },
    manager(options = {}) {
      const recorder = new Recorder();
      const manager = new BundleManager({
        source: new FileBundleSource({ path, maxBytes: 1 << 20 }),
        trust: { keys: (options.keys ?? [signer]).map((key) => key.anchor), roots: [], identity: undefined },
        stateDir: join(dir, 'state'),
        offline: { mode: options.mode ?? 'cached_with_expiry', maxAgeMs: 60_000 },
        pollIntervalMs: 60_000,
        fetchTimeoutMs: 2_000,
        callbacks: recorder,
        ...options,
      });
      managers.push(manager);
      return { manager, recorder };
    },
    async runOnce() {
      const { manager } = fixture.manager();
      await manager.start();
      manager.stop();
    },
  };
  return fixture;
}
