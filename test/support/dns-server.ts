// A tiny authoritative DNS server for tests: answers A and AAAA from a zone object over UDP and
// TCP on 127.0.0.1 (same port), truncating big UDP replies, and logs every question.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';

export interface ZoneEntry {
  readonly A?: readonly string[];
  readonly AAAA?: readonly string[];
  /** answer SERVFAIL for every question about this name */
  readonly servfail?: boolean;
  /** never answer questions about this name, like a server behind a dropping firewall */
  readonly silent?: boolean;
  /** the TTL of its records, in seconds; 5 when not given */
  readonly ttl?: number;
}

export type Zone = Readonly<Record<string, ZoneEntry>>;

export interface Question {
  readonly name: string;
  readonly type: string;
  readonly transport: 'udp' | 'tcp';
}

const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const UDP_LIMIT = 512;

export class TestDnsServer {
  /** every question received, in order */
  readonly questions: Question[] = [];
  zone: Zone;
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly tcpClients = new Set<Socket>();

  constructor(zone: Zone) {
    this.zone = zone;
  }

  get port(): number {
    return (this.tcp?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** `127.0.0.1:PORT`, the form `connect.resolvers` takes */
  get server(): string {
    return `127.0.0.1:${this.port}`;
  }

  questionsFor(name: string): Question[] {
    return this.questions.filter((question) => question.name === name);
  }

  /** `port` 0 picks a free one; 53 only inside a test network namespace, for the system resolver. */
  async start(port = 0): Promise<this> {
    // UDP takes an ephemeral port; TCP must share it, so retry if another socket holds it on TCP.
    for (let attempt = 0; attempt < 10; attempt++) {
      const udp = createSocket('udp4');
      udp.bind(port, '127.0.0.1');
      await once(udp, 'listening');
      const tcp = createServer((socket) => this.serveTcp(socket));
      try {
        tcp.listen(udp.address().port, '127.0.0.1');
        await once(tcp, 'listening');
      } catch {
        udp.close();
        continue;
      }
      udp.on('message', (message, remote) => {
        const reply = this.answer(message, 'udp');
        if (reply !== undefined) udp.send(reply, remote.port, remote.address);
      });
      this.udp = udp;
      this.tcp = tcp;
      return this;
    }
    throw new Error('no port free for both UDP and TCP');
  }

  /** `close` like a net.Server; `stop` is the same for callers that read better with it */
  stop(): Promise<void> {
    return this.close();
  }

  async close(): Promise<void> {
    for (const client of this.tcpClients) client.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    if (udp !== undefined) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcp !== undefined) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  private serveTcp(socket: Socket): void {
    this.tcpClients.add(socket);
    socket.on('close', () => this.tcpClients.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // RFC 1035 §4.2.2: each message over TCP is preceded by its two-byte length.
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const reply = this.answer(buffered.subarray(2, 2 + length), 'tcp');
        buffered = buffered.subarray(2 + length);
        if (reply === undefined) continue;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  }

  private answer(message: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return undefined;
    }
    const question = query.questions?.[0];
    if (question === undefined) return undefined;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    this.questions.push({ name, type: question.type, transport });
    const entry = this.zone[name];
    if (entry?.silent === true) return undefined;
    let rcode = 0;
    const answers: dnsPacket.Answer[] = [];
    if (entry === undefined) rcode = RCODE_NXDOMAIN;
    else if (entry.servfail === true) rcode = RCODE_SERVFAIL;
    else if (question.type === 'A' || question.type === 'AAAA') {
      for (const data of entry[question.type] ?? []) answers.push({ type: question.type, name: question.name, ttl: entry.ttl ?? 5, data });
    }
    const reply = dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags: dnsPacket.AUTHORITATIVE_ANSWER | rcode, questions: [question], answers });
    // RFC 1035 §4.2.1: a UDP reply is at most 512 bytes; a longer one is cut and flagged so the
    // client asks again over TCP. Ignoring EDNS keeps that switch predictable for tests.
    if (transport === 'tcp' || reply.length <= UDP_LIMIT) return reply;
    return dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.TRUNCATED_RESPONSE | rcode, questions: [question], answers: [] });
  }
}

export async function startDnsServer(zone: Zone, port = 0): Promise<TestDnsServer> {
  return new TestDnsServer(zone).start(port);
}
