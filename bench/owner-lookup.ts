// Measures the socket owner lookup that identity runs once per accepted connection, with many
// sockets open: sock_diag's exact tuple query and its filtered dump against parsing /proc/net/tcp.
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { establishedOwner, localEndOwners } from '../src/identity/sock-diag.js';

/** Connection pairs to hold open: each is two sockets (client and accepted) in the kernel table. */
const PAIRS = Number(process.env.OWNER_BENCH_PAIRS ?? 5000);
const LOOKUPS = Number(process.env.OWNER_BENCH_LOOKUPS ?? 2000);

function hex(octets: readonly number[], port: number): string {
  // /proc spells an IPv4 address as one little-endian word on x86 and arm64.
  const word = [...octets].reverse().map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${word}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** The /proc alternative at its best: one table, state 01 and the exact pair only. */
async function procOwner(client: Socket): Promise<number | undefined> {
  const local = hex([127, 0, 0, 1], client.localPort ?? 0);
  const remote = hex([127, 0, 0, 1], client.remotePort ?? 0);
  for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote && fields[3] === '01') return Number(fields[7]);
  }
  return undefined;
}

function summary(samples: number[]): { median_us: number; p99_us: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 1000 * 10) / 10;
  return { median_us: at(0.5), p99_us: at(0.99) };
}

async function timed(count: number, lookup: (client: Socket) => unknown, clients: readonly Socket[]): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const client = clients[(i * 7919) % clients.length];
    if (client === undefined) continue;
    const started = performance.now();
    if ((await lookup(client)) === undefined) throw new Error('lookup found no owner for an open socket');
    samples.push(performance.now() - started);
  }
  return samples;
}

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as AddressInfo).port;
const accepted: Socket[] = [];
server.on('connection', (socket) => accepted.push(socket));
const clients: Socket[] = [];
for (let i = 0; i < PAIRS; i++) {
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  clients.push(client);
}
const table = (await readFile('/proc/net/tcp', 'utf8')).length;
const exact = (client: Socket): number | undefined =>
  establishedOwner({ address: '127.0.0.1', port: client.localPort ?? 0 }, { address: '127.0.0.1', port: client.remotePort ?? 0 });
const dump = (client: Socket): number | undefined => localEndOwners('tcp', '127.0.0.1', client.localPort ?? 0)[0];
const udp = createSocket('udp4');
await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
const udpDump = (): number | undefined => localEndOwners('udp', '127.0.0.1', udp.address().port)[0];
const result = {
  sockets: PAIRS * 2,
  proc_net_tcp_bytes: table,
  sock_diag_exact: summary(await timed(LOOKUPS, exact, clients)),
  sock_diag_tcp_local_end_dump: summary(await timed(Math.min(LOOKUPS, 200), dump, clients)),
  sock_diag_udp_local_end_dump: summary(await timed(LOOKUPS, udpDump, clients)),
  proc_net_tcp_parse: summary(await timed(Math.min(LOOKUPS, 200), procOwner, clients)),
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
for (const socket of [...clients, ...accepted]) socket.destroy();
server.close();
udp.close();
