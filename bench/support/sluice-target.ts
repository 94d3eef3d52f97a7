// Starts Sluice the way an operator does (`sluice run --config FILE`) with a generated config:
// loopback ports only, 127.0.0.0/8 allowed on purpose, no blocklist feeds to download.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, stopChild } from './children.js';
import { sampleSum, scrape, type Scrape } from './prometheus.js';
import { httpOk, waitUntil } from './readiness.js';

/** dist/bench/support → the repository root */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** The realistic profile's additions; without them Sluice runs the minimal profile (Learn mode, shipped rules). */
export interface RealisticInputs {
  readonly rulesFile: string;
  readonly blocklistFile: string;
  /** `connect.resolvers`: the bench's DNS server as host:port */
  readonly resolver: string;
  readonly rules: number;
  readonly blocklistEntries: number;
}

export interface SluiceOptions {
  readonly fsync: boolean;
  readonly realistic: RealisticInputs | null;
  /** written as `workers: N` only when given: that key needs Sluice's multi-worker feature */
  readonly workers: number | null;
  /** run under `node --cpu-prof`, writing the profile here when Sluice stops */
  readonly cpuProfileDir: string | null;
  /** `limits.max_connections`: room for the idle tunnels (the default, 4,096, is below them) */
  readonly maxConnections: number;
}

export interface RunningSluice {
  readonly port: number;
  readonly adminPort: number;
  readonly pid: number;
  /** stops Sluice and reports what its audit chain holds and what it decided */
  stop(): Promise<Record<string, number>>;
}

async function generateConfig(dir: string, options: SluiceOptions): Promise<{ text: string; proxyPort: number; adminPort: number }> {
  const [proxy, admin, transparentHttp, transparentTls, dns] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const { realistic } = options;
  const rules = [...(realistic === null ? [] : [realistic.rulesFile]), join(REPO_ROOT, 'rules')];
  const text = [
    // Realistic: only the generated allow rule lets the origin through, as in a locked-down deployment.
    `mode: ${realistic === null ? 'learn' : 'strict'}`,
    'listen:',
    `  proxy: 127.0.0.1:${proxy}`,
    `  admin: 127.0.0.1:${admin}`,
    `  transparent_http: 127.0.0.1:${transparentHttp}`,
    `  transparent_tls: 127.0.0.1:${transparentTls}`,
    `  dns: 127.0.0.1:${dns}`,
    `state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    `rules: [${rules.map((path) => JSON.stringify(path)).join(', ')}]`,
    `blocklists: ${JSON.stringify(join(dir, 'blocklists', 'sources.yaml'))}`,
    'connect:',
    '  allow_cidrs: [{ name: bench, cidr: 127.0.0.0/8 }]',
    ...(realistic === null ? [] : [`  resolvers: [${JSON.stringify(realistic.resolver)}]`]),
    'limits:',
    `  max_connections: ${options.maxConnections}`,
    'audit:',
    `  fsync: ${options.fsync}`,
    'log:',
    '  level: info',
    ...(options.workers === null ? [] : [`workers: ${options.workers}`]),
    '',
  ].join('\n');
  return { text, proxyPort: proxy, adminPort: admin };
}

/** A realistic Sluice that silently loaded less than the profile says would measure the wrong thing. */
function checkLoaded(samples: Scrape, realistic: RealisticInputs): void {
  const rules = sampleSum(samples, 'sluice_rules_loaded');
  const entries = sampleSum(samples, 'sluice_blocklist_entries', 'source="local"');
  if (rules < realistic.rules) throw new Error(`sluice loaded ${rules} rules, expected at least ${realistic.rules}`);
  if (entries < realistic.blocklistEntries) throw new Error(`sluice loaded ${entries} local blocklist entries, expected ${realistic.blocklistEntries}`);
}

async function countRecords(file: string): Promise<{ auditRecords: number; auditBytes: number }> {
  const audit = await readFile(file);
  let records = 0;
  for (let at = audit.indexOf(10); at >= 0; at = audit.indexOf(10, at + 1)) records++;
  return { auditRecords: records, auditBytes: audit.length };
}

export async function startSluice(dir: string, options: SluiceOptions): Promise<RunningSluice> {
  await mkdir(join(dir, 'blocklists'), { recursive: true });
  // No feeds: the bench must not reach the internet, and a download would compete for the CPU.
  const local = options.realistic === null ? 'local.txt' : JSON.stringify(options.realistic.blocklistFile);
  await writeFile(join(dir, 'blocklists', 'sources.yaml'), `local: ${local}\nallow: allow.txt\nsources: []\n`);
  await writeFile(join(dir, 'blocklists', 'local.txt'), '');
  await writeFile(join(dir, 'blocklists', 'allow.txt'), '');
  const config = await generateConfig(dir, options);
  const configFile = join(dir, 'sluice.yaml');
  await writeFile(configFile, config.text);
  const profiling = options.cpuProfileDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir];
  // Sluice logs at info level; the lines go to a file, as they would to journald.
  const log = await open(join(dir, 'sluice.log'), 'w');
  const child = startChild(process.execPath, [...profiling, CLI, 'run', '--config', configFile], { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  let loaded: Scrape;
  try {
    // Loading 10,000 rules and a million blocklist names takes a while on a busy machine.
    await waitUntil('sluice', child, () => httpOk(`http://127.0.0.1:${config.adminPort}/readyz`), 60_000);
    loaded = await scrape(config.adminPort);
    if (options.realistic !== null) checkLoaded(loaded, options.realistic);
  } catch (error) {
    await stopChild(child);
    const tail = (await readFile(join(dir, 'sluice.log'), 'utf8').catch(() => '')).slice(-2_000);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tail}`);
  }
  const pid = child.pid ?? 0;
  return {
    port: config.proxyPort,
    adminPort: config.adminPort,
    pid,
    stop: async () => {
      const decided = await scrape(config.adminPort).catch(() => new Map<string, number>());
      // The profile is written as the process exits, after Sluice has flushed its audit chain.
      await stopChild(child, options.cpuProfileDir === null ? 5_000 : 30_000);
      return {
        ...(await countRecords(join(dir, 'state', 'audit.jsonl'))),
        rulesLoaded: sampleSum(loaded, 'sluice_rules_loaded'),
        blocklistEntries: sampleSum(loaded, 'sluice_blocklist_entries'),
        decisionsAllow: sampleSum(decided, 'sluice_decisions_total', 'verdict="allow"'),
        decisionsLearn: sampleSum(decided, 'sluice_decisions_total', 'verdict="learn"'),
        decisionsDeny: sampleSum(decided, 'sluice_decisions_total', 'verdict="deny"'),
      };
    },
  };
}
