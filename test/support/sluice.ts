// Starts a real Sluice in this process for integration tests: a temporary state directory and
// config file, listeners on 127.0.0.1 port 0, and every log line captured for assertions.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Sluice } from '../../src/app.js';
import type { Schedule } from '../../src/audit/schedule.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/obs/log.js';

/** One parsed audit record: its kind and whatever fields that kind carries. */
export type AuditLine = { readonly kind: string } & Readonly<Record<string, unknown>>;

export interface RunningSluice {
  readonly sluice: Sluice;
  readonly proxyUrl: string;
  /** the proxy listener's port, for raw-socket clients */
  readonly proxyPort: number;
  readonly adminUrl: string;
  readonly dir: string;
  readonly stateDir: string;
  readonly configFile: string;
  readonly logs: Record<string, unknown>[];
  /** every record of the audit chain so far, parsed */
  auditRecords(): Promise<AuditLine[]>;
  /** stops this instance; the directory stays for a restart */
  stop(): Promise<void>;
  /** stops and removes the directory */
  close(): Promise<void>;
}

export interface SluiceSetup {
  /** extra top-level YAML appended to the generated config */
  readonly config?: string;
  /** rule files: name → YAML text, written to DIR/rules/ */
  readonly rules?: Readonly<Record<string, string>>;
  /** blocklists/sources.yaml text; default: no sources */
  readonly blocklists?: string;
  /** reuse a directory from an earlier instance (restart) */
  readonly dir?: string;
  /** drives the audit chain's write retries (see ManualTimer) */
  readonly auditRetry?: Schedule;
  /** further `listen:` entries (transparent_http, dns, ...), e.g. `{ transparent_http: '127.0.0.1:0' }` */
  readonly listen?: Readonly<Record<string, string>>;
  /** the environment Sluice reads (connect.upstream_proxy[].credentials_env); default: none */
  readonly env?: Readonly<Record<string, string>>;
  /** the clock inference budget windows are judged by (window rollover tests) */
  readonly now?: () => number;
}

let instances = 0;

export async function startSluice(setup: SluiceSetup = {}): Promise<RunningSluice> {
  const dir = setup.dir ?? (await mkdtemp(join(tmpdir(), 'sluice-test-')));
  const rulesDir = join(dir, 'rules');
  await mkdir(rulesDir, { recursive: true });
  for (const [name, text] of Object.entries(setup.rules ?? {})) await writeFile(join(rulesDir, name), text);
  const configFile = join(dir, 'sluice.yaml');
  // No feed URLs: a test proxy must never reach for the internet's blocklists.
  await writeFile(join(dir, 'blocklists.yaml'), setup.blocklists ?? 'sources: []\n');
  const listen = Object.entries(setup.listen ?? {}).map(([key, value]) => `  ${key}: "${value}"`);
  const base = ['listen:', '  proxy: "127.0.0.1:0"', '  admin: "127.0.0.1:0"', ...listen, 'state_dir: state', 'rules: [rules]', 'blocklists: blocklists.yaml', 'log: { level: debug }'];
  await writeFile(configFile, `${base.join('\n')}\n${setup.config ?? ''}\n`);
  const loaded = await loadConfig(configFile, { isRoot: false });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  instances += 1;
  const sluice = await Sluice.start(loaded, {
    log: createLogger('debug', sink),
    processMetrics: instances === 1,
    ...(setup.auditRetry === undefined ? {} : { auditRetry: setup.auditRetry }),
    env: setup.env ?? {},
    ...(setup.now === undefined ? {} : { now: setup.now }),
  });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await sluice.close();
  };
  return {
    sluice,
    proxyUrl: `http://127.0.0.1:${sluice.proxyAddress.port}`,
    proxyPort: sluice.proxyAddress.port,
    adminUrl: `http://127.0.0.1:${sluice.adminAddress.port}`,
    dir,
    stateDir: loaded.stateDir,
    configFile,
    logs,
    auditRecords: async () => (await readFile(loaded.auditFile, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditLine),
    stop,
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The config lines that let a test reach its own origins on loopback (denied by default). */
export const ALLOW_LOOPBACK = 'connect:\n  allow_cidrs:\n    - { name: test-origins, cidr: 127.0.0.0/8 }\n    - { name: test-origins-v6, cidr: "::1/128" }';
