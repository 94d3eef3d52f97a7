// Runs inside a fresh network namespace (`unshare -n`): loads a guard ruleset, starts stand-in
// listeners and probes them as other users, printing one JSON report for test/nft-guard.test.ts.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { REMOVAL } from '../../src/guard/render.js';
import { runNft } from '../../src/guard/apply.js';
import { becomeUser, runAsUser } from './as-user.js';

const run = promisify(execFile);

export interface ProbeResult {
  readonly reply?: string;
  readonly error?: string;
}

export interface Probe {
  readonly label: string;
  readonly uid: number;
  readonly gid: number;
  readonly host: string;
  readonly port: number;
  readonly udp?: boolean;
}

/** What a probe prints: the first line a listener sent, or the errno the connection ended with. */
function probe(host: string, port: number, udp: boolean): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'TIMEOUT' }), 2000);
    const done = (result: ProbeResult): void => {
      clearTimeout(timer);
      resolve(result);
    };
    if (udp) {
      const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      socket.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ?? 'ERROR' }));
      socket.on('message', (message) => done({ reply: message.toString('utf8') }));
      socket.send('ping', port, host, (error) => {
        if (error !== null) done({ error: (error as NodeJS.ErrnoException).code ?? 'ERROR' });
      });
      timer.unref();
      return;
    }
    const socket = connect({ host, port });
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      done({ reply: data.trim() });
      socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ?? 'ERROR' }));
  });
}

async function probeAs(target: Probe): Promise<ProbeResult> {
  const args = [target.host, String(target.port), target.udp === true ? 'udp' : 'tcp'];
  return JSON.parse(await runAsUser(target, process.argv[1] ?? '', args)) as ProbeResult;
}

function listen(port: number, name: string): Promise<Server[]> {
  return Promise.all(
    ['127.0.0.1', '::1'].map(
      (host) =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer((socket) => socket.end(`${name}\n`));
          server.once('error', reject);
          server.listen(port, host, () => resolve(server));
        }),
    ),
  );
}

async function network(): Promise<void> {
  // A veth with documentation/benchmark addresses gives the "outside" a route that leads nowhere.
  await run('ip', ['link', 'set', 'lo', 'up']);
  await run('ip', ['link', 'add', 'name', 'sl0', 'type', 'veth', 'peer', 'name', 'sl1']);
  await run('ip', ['addr', 'add', '198.18.0.2/15', 'dev', 'sl0']);
  await run('ip', ['-6', 'addr', 'add', '2001:db8::2/64', 'dev', 'sl0', 'nodad']);
  await run('ip', ['link', 'set', 'sl0', 'up']);
  await run('ip', ['link', 'set', 'sl1', 'up']);
}

interface Plan {
  readonly ruleset: string;
  readonly listeners: Readonly<Record<string, number>>;
  readonly udpListeners: Readonly<Record<string, number>>;
  readonly probes: readonly Probe[];
  /** probed again after every listener closed, as if Sluice had crashed */
  readonly afterCrash: readonly Probe[];
  /** probed again after `nft remove` */
  readonly afterRemoval: readonly Probe[];
}

async function main(planFile: string): Promise<void> {
  const plan = JSON.parse(await readFile(planFile, 'utf8')) as Plan;
  await network();
  await runNft(plan.ruleset);
  const servers = (await Promise.all(Object.entries(plan.listeners).map(([name, port]) => listen(port, name)))).flat();
  const udp = Object.entries(plan.udpListeners).map(([name, port]) => {
    const socket = createSocket({ type: 'udp4' });
    socket.on('message', (_message, peer) => socket.send(name, peer.port, peer.address));
    socket.bind(port, '127.0.0.1');
    return socket;
  });
  const report: Record<string, ProbeResult> = {};
  for (const target of plan.probes) report[target.label] = await probeAs(target);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  for (const socket of udp) socket.close();
  for (const target of plan.afterCrash) report[target.label] = await probeAs(target);
  const { stdout } = await run('nft', ['list', 'table', 'inet', 'sluice']);
  report['table still loaded after crash'] = { reply: stdout.includes('agent_egress') ? 'loaded' : 'missing' };
  await runNft(REMOVAL);
  const restored = (await Promise.all(Object.entries(plan.listeners).map(([name, port]) => listen(port, name)))).flat();
  for (const target of plan.afterRemoval) report[target.label] = await probeAs(target);
  await Promise.all(restored.map((server) => new Promise((resolve) => server.close(resolve))));
  process.stdout.write(JSON.stringify(report));
}

// `plan FILE` from the test; `UID:GID HOST PORT tcp|udp` from probeAs.
const [mode, first, second, third] = process.argv.slice(2);
if (mode === 'plan' && first !== undefined) {
  await main(first);
} else if (first !== undefined && second !== undefined) {
  becomeUser(mode);
  process.stdout.write(JSON.stringify(await probe(first, Number(second), third === 'udp')));
  process.exit(0);
}
