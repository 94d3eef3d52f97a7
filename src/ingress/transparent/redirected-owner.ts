// Finds the agent UID behind a connection or datagram the nft guard redirected. The agent's socket
// still names the address it dialled as its peer, so only its own end (address, port) can match.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';
import type { ConfigFile } from '../../config/schema.js';
import { ClientConnection, IdentityResolver } from '../../identity/identify.js';
import type { SocketPair } from '../../identity/socket-owner.js';

const LITTLE_ENDIAN = endianness() === 'LE';
// /proc/net/tcp: 01 is ESTABLISHED. /proc/net/udp: 07 (unbound peer) or 01 (connected socket).
const LIVE_STATES: Readonly<Record<Transport, ReadonlySet<string>>> = { tcp: new Set(['01']), udp: new Set(['01', '07']) };

export type Transport = 'tcp' | 'udp';

/** /proc/net/{tcp,udp}{,6} spell each 32-bit word of an address in host byte order, then :PORT. */
function procSpelling(bytes: readonly number[], port: number): string {
  let hex = '';
  for (let word = 0; word < bytes.length; word += 4) {
    const group = bytes.slice(word, word + 4);
    for (const byte of LITTLE_ENDIAN ? group.reverse() : group) hex += byte.toString(16).padStart(2, '0');
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

async function ownersIn(path: string, local: string, states: ReadonlySet<string>): Promise<number[]> {
  let table: string;
  try {
    table = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  const uids: number[] = [];
  // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && states.has(fields[3] ?? '')) uids.push(Number(fields[7]));
  }
  return uids;
}

/**
 * The UID owning the live socket whose local end is the client's (address, port), or undefined
 * when none or several users have one: an ambiguous owner is no owner (fail closed).
 */
export async function ownerOfLocalEnd(transport: Transport, address: string, port: number): Promise<number | undefined> {
  const parsed = ipaddr.process(address);
  const states = LIVE_STATES[transport];
  const lookups: Promise<number[]>[] = [];
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as ipaddr.IPv4;
    lookups.push(ownersIn(`/proc/net/${transport}`, procSpelling(v4.octets, port), states));
    lookups.push(ownersIn(`/proc/net/${transport}6`, procSpelling(v4.toIPv4MappedAddress().toByteArray(), port), states));
  } else {
    lookups.push(ownersIn(`/proc/net/${transport}6`, procSpelling((parsed as ipaddr.IPv6).toByteArray(), port), states));
  }
  let owners = new Set((await Promise.all(lookups)).flat());
  // An unconnected UDP socket is listed under the wildcard address it is bound to, not the
  // source address the kernel picked for the datagram.
  if (owners.size === 0 && transport === 'udp') {
    const wildcards = [ownersIn('/proc/net/udp6', procSpelling(new Array<number>(16).fill(0), port), states)];
    if (parsed.kind() === 'ipv4') wildcards.push(ownersIn('/proc/net/udp', procSpelling([0, 0, 0, 0], port), states));
    owners = new Set((await Promise.all(wildcards)).flat());
  }
  if (owners.size !== 1) return undefined;
  const [uid] = owners;
  return uid !== undefined && Number.isInteger(uid) ? uid : undefined;
}

class LocalEndConnection extends ClientConnection {
  private lookup: Promise<number | undefined> | undefined;

  constructor(
    pair: SocketPair,
    private readonly transport: Transport,
  ) {
    super(pair, true);
  }

  override ownerUid(): Promise<number | undefined> {
    this.lookup ??= ownerOfLocalEnd(this.transport, this.pair.remoteAddress, this.pair.remotePort);
    return this.lookup;
  }
}

/**
 * Identity for the transparent listeners. They bind loopback only, and packets to loopback never
 * arrive from another host, so every client is local and its UID is looked up by its own end.
 */
export class RedirectedIdentity extends IdentityResolver {
  constructor(config: Pick<ConfigFile, 'agents' | 'mode' | 'anonymous'>) {
    super(config);
  }

  override connection(pair: SocketPair): ClientConnection {
    return new LocalEndConnection(pair, 'tcp');
  }

  /** For a DNS query: its UDP or TCP source, looked up the same way. */
  peer(transport: Transport, pair: SocketPair): ClientConnection {
    return new LocalEndConnection(pair, transport);
  }
}
