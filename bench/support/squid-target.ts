// Runs squid as the reference proxy with a generated minimal config: loopback port, localhost
// allowed, no cache, every file in the bench's temp dir; names resolved the way the profile says.
import { execFile } from 'node:child_process';
import { access, chown, constants, open, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { freePort, startChild, stopChild } from './children.js';
import { tcpAccepts, waitUntil } from './readiness.js';

/**
 * How squid finds the origin: `literal` (the minimal profile's targets are IP literals), the
 * bench's DNS server (squid only queries port 53), or a hosts file when that server is elsewhere.
 */
export type SquidResolution = { readonly kind: 'literal' } | { readonly kind: 'dns'; readonly server: string } | { readonly kind: 'hosts'; readonly name: string };

export interface SquidOptions {
  readonly resolution: SquidResolution;
  /** squid's own SMP workers; above 1 squid runs a master, a coordinator and the workers */
  readonly workers: number;
  /** require Basic proxy credentials, checked against this htpasswd file (tests of a parent proxy) */
  readonly passwordFile?: string;
}

/** Who may use squid: everyone on localhost, or only with valid credentials when a password file is given. */
function accessLines(passwordFile: string | undefined): string[] {
  if (passwordFile === undefined) return ['http_access allow localhost', 'http_access deny all'];
  return [
    `auth_param basic program /usr/lib/squid/basic_ncsa_auth ${passwordFile}`,
    'auth_param basic realm sluice-parent',
    'acl authenticated proxy_auth REQUIRED',
    'http_access deny !authenticated',
    'http_access allow localhost',
    'http_access deny all',
  ];
}

export interface RunningSquid {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function findSquid(): Promise<string | null> {
  const directories = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/squid/sbin'];
  for (const directory of directories.filter((entry) => entry !== '')) {
    const candidate = join(directory, 'squid');
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export function squidVersion(binary: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(binary, ['-v'], { timeout: 5_000 }, (_error, stdout) => resolve(/Version (\S+)/.exec(stdout)?.[1] ?? 'unknown'));
  });
}

/** Squid refuses to run as root and switches to this user, which must own its log files. */
async function unprivilegedUser(): Promise<{ name: string; uid: number; gid: number } | null> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const name of ['proxy', 'squid', 'nobody']) {
    const fields = passwd.split('\n').find((line) => line.startsWith(`${name}:`))?.split(':');
    if (fields !== undefined) return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  return null;
}

function resolutionLines(dir: string, resolution: SquidResolution): string[] {
  switch (resolution.kind) {
    // Nothing to resolve; 127.0.0.1:53 answers nothing, so squid could not reach a real resolver if it tried.
    case 'literal':
      return ['dns_nameservers 127.0.0.1'];
    case 'dns':
      return [`dns_nameservers ${resolution.server}`, 'hosts_file none'];
    case 'hosts':
      return [`hosts_file ${join(dir, 'hosts')}`, 'dns_nameservers 127.0.0.1'];
  }
}

function configText(dir: string, port: number, user: string | null, options: SquidOptions): string {
  return [
    `http_port 127.0.0.1:${port}`,
    ...accessLines(options.passwordFile),
    'cache deny all',
    'cache_mem 0 MB',
    `pid_filename ${join(dir, 'squid.pid')}`,
    `cache_log ${join(dir, 'cache.log')}`,
    // One log line per request, like Sluice's audit record; stdio avoids the log daemon helper.
    `access_log stdio:${join(dir, 'access.log')}`,
    'cache_store_log none',
    `coredump_dir ${dir}`,
    'netdb_filename none',
    'pinger_enable off',
    ...resolutionLines(dir, options.resolution),
    'shutdown_lifetime 0 seconds',
    'visible_hostname sluice-bench',
    ...(options.workers > 1 ? [`workers ${options.workers}`] : []),
    ...(user === null ? [] : [`cache_effective_user ${user}`]),
    '',
  ].join('\n');
}

export async function startSquid(binary: string, dir: string, options: SquidOptions): Promise<RunningSquid> {
  const port = await freePort();
  const root = process.getuid?.() === 0;
  const user = root ? await unprivilegedUser() : null;
  if (user !== null) await chown(dir, user.uid, user.gid);
  const configFile = join(dir, 'squid.conf');
  await writeFile(configFile, configText(dir, port, user?.name ?? null, options));
  if (options.resolution.kind === 'hosts') await writeFile(join(dir, 'hosts'), `127.0.0.1 ${options.resolution.name}\n`);
  const output = await open(join(dir, 'squid.out'), 'w');
  // -N is one process, no kids; SMP workers need --foreground, which keeps the master attached.
  const mode = options.workers > 1 ? '--foreground' : '-N';
  const child = startChild(binary, [mode, '-f', configFile], { stdio: ['ignore', output.fd, output.fd] });
  await output.close();
  try {
    await waitUntil('squid', child, () => tcpAccepts(port), 20_000);
  } catch (error) {
    await stopChild(child);
    const log = (await readFile(join(dir, 'cache.log'), 'utf8').catch(() => '')) + (await readFile(join(dir, 'squid.out'), 'utf8').catch(() => ''));
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${log.slice(-2_000)}`);
  }
  return { port, pid: child.pid ?? 0, stop: () => stopChild(child) };
}
