// Starts Sluice the way an operator does (`sluice run --config FILE`) with a generated config:
// loopback ports only, 127.0.0.0/8 allowed on purpose, Learn mode, no blocklist feeds to download.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, stopChild } from './children.js';
import { httpOk, waitUntil } from './readiness.js';

/** dist/bench/support → the repository root */
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export interface RunningSluice {
  readonly port: number;
  /** stops Sluice and reports what its audit chain holds */
  stop(): Promise<{ auditRecords: number; auditBytes: number }>;
}

interface GeneratedConfig {
  readonly text: string;
  readonly proxyPort: number;
  readonly adminPort: number;
}

async function generateConfig(dir: string, fsync: boolean): Promise<GeneratedConfig> {
  const [proxy, admin, transparentHttp, transparentTls, dns] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const text = [
    'mode: learn',
    'listen:',
    `  proxy: 127.0.0.1:${proxy}`,
    `  admin: 127.0.0.1:${admin}`,
    `  transparent_http: 127.0.0.1:${transparentHttp}`,
    `  transparent_tls: 127.0.0.1:${transparentTls}`,
    `  dns: 127.0.0.1:${dns}`,
    `state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    `rules: [${JSON.stringify(join(REPO_ROOT, 'rules'))}]`,
    `blocklists: ${JSON.stringify(join(dir, 'blocklists', 'sources.yaml'))}`,
    'connect:',
    '  allow_cidrs: [{ name: bench, cidr: 127.0.0.0/8 }]',
    'audit:',
    `  fsync: ${fsync}`,
    '',
  ].join('\n');
  return { text, proxyPort: proxy, adminPort: admin };
}

export async function startSluice(dir: string, fsync: boolean): Promise<RunningSluice> {
  await mkdir(join(dir, 'blocklists'), { recursive: true });
  // No feeds: the bench must not reach the internet, and a download would compete for the CPU.
  await writeFile(join(dir, 'blocklists', 'sources.yaml'), 'local: local.txt\nallow: allow.txt\nsources: []\n');
  await writeFile(join(dir, 'blocklists', 'local.txt'), '');
  await writeFile(join(dir, 'blocklists', 'allow.txt'), '');
  const config = await generateConfig(dir, fsync);
  const configFile = join(dir, 'sluice.yaml');
  await writeFile(configFile, config.text);
  // Sluice logs two lines per request at info level; they go to a file, as they would to journald.
  const log = await open(join(dir, 'sluice.log'), 'w');
  const child = startChild(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  try {
    await waitUntil('sluice', child, () => httpOk(`http://127.0.0.1:${config.adminPort}/readyz`), 15_000);
  } catch (error) {
    await stopChild(child);
    const tail = (await readFile(join(dir, 'sluice.log'), 'utf8').catch(() => '')).slice(-2_000);
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${tail}`);
  }
  return {
    port: config.proxyPort,
    stop: async () => {
      await stopChild(child);
      const audit = await readFile(join(dir, 'state', 'audit.jsonl'));
      let records = 0;
      for (let at = audit.indexOf(10); at >= 0; at = audit.indexOf(10, at + 1)) records++;
      return { auditRecords: records, auditBytes: audit.length };
    },
  };
}
