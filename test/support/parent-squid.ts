// A real squid as the parent (upstream) proxy of a test: Basic credentials required, one test
// name resolved to 127.0.0.1 from a hosts file, and its access log readable line by line.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findSquid, startSquid } from '../../bench/support/squid-target.js';

const run = promisify(execFile);

export interface ParentSquid {
  readonly port: number;
  /** every line squid has logged: `time elapsed client code/status bytes METHOD URL user ...` */
  accessLog(): Promise<string[]>;
  close(): Promise<void>;
}

/** `name` is resolved by squid (never by Sluice) to 127.0.0.1; only `user:password` may use it. */
export async function startParentSquid(name: string, user: string, password: string): Promise<ParentSquid> {
  const binary = await findSquid();
  if (binary === null) throw new Error('squid is not installed (apt-get install -y squid; .ci/run installs it)');
  const dir = await mkdtemp(join(tmpdir(), 'sluice-parent-squid-'));
  const passwordFile = join(dir, 'passwd');
  const { stdout: hash } = await run('openssl', ['passwd', '-apr1', password]);
  await writeFile(passwordFile, `${user}:${hash.trim()}\n`, { mode: 0o644 });
  try {
    const squid = await startSquid(binary, dir, { resolution: { kind: 'hosts', name }, workers: 1, passwordFile });
    return {
      port: squid.port,
      accessLog: async () => (await readFile(join(dir, 'access.log'), 'utf8').catch(() => '')).split('\n').filter((line) => line !== ''),
      close: async () => {
        await squid.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
