// Finds the local UID that owns the client end of a TCP connection, from /proc/net/tcp{,6}.
// This is what lets the nftables guard and the config name agents by Unix user.
import { procSpellings, readSocketTable } from './socket-table.js';

export interface SocketPair {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

async function findUid(path: string, local: string, remote: string): Promise<number | undefined> {
  return (await readSocketTable(path)).find((row) => row.local === local && row.remote === remote)?.uid;
}

/**
 * The UID of the process whose socket is the client side of `pair`, or undefined when the client
 * is not on this host (or the tables are unreadable). The client's entry has local = its own
 * address and remote = ours.
 */
export async function socketOwnerUid(pair: SocketPair): Promise<number | undefined> {
  const client = procSpellings(pair.remoteAddress, pair.remotePort);
  const server = procSpellings(pair.localAddress, pair.localPort);
  if (client.v4 !== undefined && server.v4 !== undefined) {
    const uid = await findUid('/proc/net/tcp', client.v4, server.v4);
    if (uid !== undefined) return uid;
  }
  return findUid('/proc/net/tcp6', client.v6, server.v6);
}
