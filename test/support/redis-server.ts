// A real redis-server (the Debian package .ci/run installs) for fleet tests: on a free 127.0.0.1
// port, nothing saved to disk, in a temp dir; stopped and started again on the same port to
// test outages, and killed when the test is done. freePort is for a port nothing listens on.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** stops the server (SIGKILL: an outage, not a shutdown) */
  stop(): Promise<void>;
  /** starts it again on the same port, empty */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function launch(port: number, dir: string, extra: readonly string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'notice', '--logfile', '', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) {
        child.stdout?.off('data', onData);
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${String(code)}: ${output}`)));
  });
}

/** `password`: clients must AUTH with it (requirepass). */
export async function startRedisServer(options: { readonly password?: string } = {}): Promise<RedisServer> {
  const extra = options.password === undefined ? [] : ['--requirepass', options.password];
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port, dir, extra);
  const stop = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start: async () => {
      child ??= await launch(port, dir, extra);
    },
    close: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
