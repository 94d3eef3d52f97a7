// The bench's own DNS server (UDP), run as a child process: answers A for the names it is given
// with 127.0.0.1, NODATA for their other types and NXDOMAIN for every other name.
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';

interface DnsServerArgs {
  /** names answered with 127.0.0.1, lower case */
  readonly names: readonly string[];
  /** where to listen, tried in order: squid only queries port 53, so that comes first */
  readonly candidates: readonly { readonly host: string; readonly port: number }[];
  readonly ttlSeconds: number;
}

const NXDOMAIN = 3;

const args = JSON.parse(process.argv[2] ?? '{}') as DnsServerArgs;
const names = new Set(args.names);
let queries = 0;

function answer(query: Buffer): Buffer | null {
  let packet;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return null;
  }
  const question = packet.questions?.[0];
  if (packet.type !== 'query' || question === undefined) return null;
  queries++;
  const known = names.has(question.name.toLowerCase());
  const answers = known && question.type === 'A' ? [{ type: 'A' as const, class: 'IN' as const, name: question.name, ttl: args.ttlSeconds, data: '127.0.0.1' }] : [];
  return dnsPacket.encode({
    type: 'response',
    id: packet.id ?? 0,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | ((packet.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | (known ? 0 : NXDOMAIN),
    questions: [question],
    answers,
  });
}

function bind(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

async function listen(): Promise<Socket> {
  let lastError: unknown = new Error('no address to listen on');
  for (const { host, port } of args.candidates) {
    try {
      return await bind(host, port);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

const socket = await listen();
socket.on('message', (query, peer) => {
  const response = answer(query);
  if (response !== null) socket.send(response, peer.port, peer.address);
});
const { address, port } = socket.address();
process.stdout.write(`${JSON.stringify({ host: address, port })}\n`);
// Each line on stdin asks how many queries have been answered so far, so the orchestrator can
// attribute lookups to the target under load. Its closing stdin (or dying) ends this process.
process.stdin.setEncoding('utf8').on('data', (text: string) => {
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) process.stdout.write(`${JSON.stringify({ queries })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
