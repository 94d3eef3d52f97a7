// Finds the local UID that owns the client end of a TCP connection, from /proc/net/tcp{,6}.
// This is what lets the nftables guard and the config name agents by Unix user.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import ipaddr from 'ipaddr.js';

export interface SocketPair {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** /proc/net/tcp prints each 32-bit word of an address in host byte order. */
function procAddress(bytes: readonly number[], port: number): string {
  let hex = '';
  for (let word = 0; word < bytes.length; word += 4) {
    const group = bytes.slice(word, word + 4);
    for (const byte of LITTLE_ENDIAN ? group.reverse() : group) hex += byte.toString(16).padStart(2, '0');
  }
  return `${hex.toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The spellings an address can have in the kernel tables: a dual-stack socket shows IPv4 as mapped IPv6. */
function spellings(address: string, port: number): { v4?: string; v6: string } {
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as ipaddr.IPv4;
    return { v4: procAddress(v4.octets, port), v6: procAddress(v4.toIPv4MappedAddress().toByteArray(), port) };
  }
  return { v6: procAddress((parsed as ipaddr.IPv6).toByteArray(), port) };
}

function findUid(table: string, local: string, remote: string): number | undefined {
  // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
  for (const line of table.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === remote) {
      const uid = Number(fields[7]);
      return Number.isInteger(uid) ? uid : undefined;
    }
  }
  return undefined;
}

async function readTable(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The UID of the process whose socket is the client side of `pair`, or undefined when the client
 * is not on this host (or the tables are unreadable). The client's entry has local = its own
 * address and remote = ours.
 */
export async function socketOwnerUid(pair: SocketPair): Promise<number | undefined> {
  const client = spellings(pair.remoteAddress, pair.remotePort);
  const server = spellings(pair.localAddress, pair.localPort);
  if (client.v4 !== undefined && server.v4 !== undefined) {
    const uid = findUid(await readTable('/proc/net/tcp'), client.v4, server.v4);
    if (uid !== undefined) return uid;
  }
  return findUid(await readTable('/proc/net/tcp6'), client.v6, server.v6);
}
