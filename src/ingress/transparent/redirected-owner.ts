// Finds the agent UID behind a connection or datagram the nft guard redirected. The agent's socket
// still names the address it dialled as its peer, so only its own end (address, port) can match.
import type { ConfigFile } from '../../config/schema.js';
import { ClientConnection, IdentityResolver } from '../../identity/identify.js';
import type { SocketPair } from '../../identity/socket-owner.js';
import { procSpelling, procSpellings, readSocketTable } from '../../identity/socket-table.js';

// /proc/net/tcp: 01 is ESTABLISHED. /proc/net/udp: 07 (unbound peer) or 01 (connected socket).
const LIVE_STATES: Readonly<Record<Transport, ReadonlySet<string>>> = { tcp: new Set(['01']), udp: new Set(['01', '07']) };

export type Transport = 'tcp' | 'udp';

async function ownersIn(path: string, local: string, states: ReadonlySet<string>): Promise<number[]> {
  return (await readSocketTable(path)).filter((row) => row.local === local && states.has(row.state)).map((row) => row.uid);
}

/**
 * The UID owning the live socket whose local end is the client's (address, port), or undefined
 * when none or several users have one: an ambiguous owner is no owner (fail closed).
 */
export async function ownerOfLocalEnd(transport: Transport, address: string, port: number): Promise<number | undefined> {
  const states = LIVE_STATES[transport];
  const spelt = procSpellings(address, port);
  const lookups = [ownersIn(`/proc/net/${transport}6`, spelt.v6, states)];
  if (spelt.v4 !== undefined) lookups.push(ownersIn(`/proc/net/${transport}`, spelt.v4, states));
  let owners = new Set((await Promise.all(lookups)).flat());
  // An unconnected UDP socket is listed under the wildcard address it is bound to, not the
  // source address the kernel picked for the datagram.
  if (owners.size === 0 && transport === 'udp') {
    const wildcards = [ownersIn('/proc/net/udp6', procSpelling(new Array<number>(16).fill(0), port), states)];
    if (spelt.v4 !== undefined) wildcards.push(ownersIn('/proc/net/udp', procSpelling([0, 0, 0, 0], port), states));
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
