// The policy-aware DNS server agents are pointed at: UDP and TCP on the same port(s), each
// query answered by handleQuery, audited through `record` before its answer goes out.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import { handleQuery, type DnsOutcome, type DnsPeer, type DnsQueryEvent, type QueryDeps, type QueryResult } from './handle-query.js';
import { fitForUdp, RCODE, response } from './response.js';
import { DnsTcpConnection, type TcpBacklog } from './tcp-connection.js';

export interface PolicyDnsOptions extends QueryDeps {
  /** addresses to bind, e.g. 127.0.0.1 and ::1 (the guard redirects IPv6 queries to ::1) */
  readonly hosts: readonly string[];
  /** 0 picks a free port, the same for every host and both transports */
  readonly port: number;
  readonly onQuery?: (event: DnsQueryEvent) => void;
  readonly countQuery?: (outcome: DnsOutcome) => void;
  /**
   * Audits a query before its answer goes out: true once that may happen, false when the audit
   * chain cannot take it, and the query is then answered SERVFAIL (fail closed). Undecodable
   * messages are reported here too, though nothing answers them.
   */
  readonly record?: (event: DnsQueryEvent) => Promise<boolean>;
  /** a TCP client idle this long is dropped, so connections cannot pile up */
  readonly tcpIdleMs?: number;
}

/** DNS over TCP is for the odd truncated answer; many open connections mean abuse */
const MAX_TCP_CLIENTS = 256;

export class PolicyDnsServer {
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: Server[] = [];
  private readonly clients = new Map<Socket, DnsTcpConnection>();
  private boundPort = 0;

  constructor(private readonly options: PolicyDnsOptions) {}

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<this> {
    // With port 0, UDP picks a free port and TCP must share it; another socket may already hold
    // that port on TCP, so start over on another.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bindAll();
        return this;
      } catch (error) {
        await this.stop();
        this.udp.length = 0;
        this.tcp.length = 0;
        if (this.options.port !== 0 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 10) throw error;
      }
    }
  }

  private async bindAll(): Promise<void> {
    let port = this.options.port;
    for (const [index, host] of this.options.hosts.entries()) {
      const udp = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
      udp.on('message', (message, remote) => this.onDatagram(udp, message, { address: remote.address, port: remote.port, transport: 'udp' }).catch(() => undefined));
      try {
        udp.bind(port, host);
        await once(udp, 'listening');
      } catch (error) {
        // A second, twin address (::1 on a host without IPv6) may be missing; the first must bind.
        const code = (error as NodeJS.ErrnoException).code;
        if (index > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
        throw error;
      }
      this.udp.push(udp);
      port = udp.address().port;
      const tcp = createServer((socket) => this.onConnection(socket));
      tcp.maxConnections = MAX_TCP_CLIENTS;
      this.tcp.push(tcp);
      tcp.listen(port, host);
      await once(tcp, 'listening');
    }
    this.boundPort = port;
  }

  /** What each open TCP connection holds in memory right now. */
  tcpBacklog(): TcpBacklog[] {
    return [...this.clients.values()].map((connection) => connection.backlog);
  }

  async stop(): Promise<void> {
    for (const client of this.clients.keys()) client.destroy();
    await Promise.all([
      ...this.udp.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))),
      ...this.tcp.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    ]);
  }

  private async answer(message: Buffer, peer: DnsPeer): Promise<{ query: dnsPacket.DecodedPacket; result: QueryResult } | null> {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      this.options.countQuery?.('malformed');
      void this.options.record?.({ agent: null, peer, name: '', type: '', outcome: 'malformed', detail: 'undecodable message', removed: 0 });
      return null;
    }
    let result = await handleQuery(query, peer, this.options);
    if ((await this.options.record?.(result.event)) === false) {
      result = { rcode: RCODE.SERVFAIL, records: [], event: { ...result.event, outcome: 'audit_unavailable', removed: 0 } };
    }
    this.options.countQuery?.(result.event.outcome);
    this.options.onQuery?.(result.event);
    return { query, result };
  }

  private async onDatagram(socket: UdpSocket, message: Buffer, peer: DnsPeer): Promise<void> {
    const answered = await this.answer(message, peer);
    if (answered === null) return;
    const { query, result } = answered;
    socket.send(fitForUdp(query, result.rcode, result.records), peer.port, peer.address);
  }

  private onConnection(socket: Socket): void {
    socket.setTimeout(this.options.tcpIdleMs ?? 10_000, () => socket.destroy());
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    const peer: DnsPeer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' };
    const connection = new DnsTcpConnection(socket, async (message) => {
      const answered = await this.answer(message, peer);
      return answered === null ? null : response(answered.query, answered.result.rcode, answered.result.records);
    });
    this.clients.set(socket, connection);
  }
}
