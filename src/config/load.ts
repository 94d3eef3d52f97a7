// Loads sluice.yaml (or the embedded default) and resolves its paths, so the rest of Sluice
// sees one frozen, absolute-path configuration.
import { access, constants } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { configSchema, type ConfigFile } from './schema.js';
import { PACKAGE_ROOT } from './package-root.js';
import { loadYamlFile, loadYamlText } from './yaml.js';


export interface LoadedConfig {
  /** the file it came from, or null for the embedded default */
  readonly file: string | null;
  readonly config: ConfigFile;
  readonly stateDir: string;
  /** rule files or directories, absolute */
  readonly rulePaths: readonly string[];
  readonly auditFile: string;
  /** blocklists/sources.yaml, and the directory of per-source last-known-good copies */
  readonly blocklistSources: string;
  readonly blocklistCacheDir: string;
}

/** What the process environment may say about placement; only the CLI reads process.env. */
export interface Placement {
  readonly stateDirOverride?: string | undefined;
  readonly xdgStateHome?: string | undefined;
  readonly home?: string | undefined;
  readonly isRoot: boolean;
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The default state directory: `var/` in a checkout (what `npm start` uses), /var/lib/sluice for
 * an installed root service, else the XDG state directory.
 */
async function defaultStateDir(placement: Placement): Promise<string> {
  if (placement.stateDirOverride !== undefined && placement.stateDirOverride !== '') return resolve(placement.stateDirOverride);
  if (await writable(PACKAGE_ROOT)) return join(PACKAGE_ROOT, 'var');
  if (placement.isRoot) return '/var/lib/sluice';
  const base = placement.xdgStateHome ?? join(placement.home ?? '/tmp', '.local', 'state');
  return join(base, 'sluice');
}

function freeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) freeze(inner);
    Object.freeze(value);
  }
  return value;
}

export async function loadConfig(file: string | null, placement: Placement): Promise<LoadedConfig> {
  const { value } = file === null ? loadYamlText('<embedded default>', '{}', configSchema) : await loadYamlFile(file, configSchema);
  const base = file === null ? PACKAGE_ROOT : dirname(resolve(file));
  const within = (path: string, root: string): string => (isAbsolute(path) ? path : resolve(root, path));
  const stateDir = value.state_dir === undefined ? await defaultStateDir(placement) : within(value.state_dir, base);
  const rulePaths = (value.rules ?? [file === null ? join(PACKAGE_ROOT, 'rules') : 'rules']).map((path) => within(path, base));
  return freeze({
    file: file === null ? null : resolve(file),
    config: value,
    stateDir,
    rulePaths,
    auditFile: within(value.audit.file, stateDir),
    blocklistSources: within(value.blocklists ?? join(PACKAGE_ROOT, 'blocklists', 'sources.yaml'), base),
    blocklistCacheDir: join(stateDir, 'blocklists'),
  });
}
