// Which local user opened the client end of a connection, asked of the kernel once, when the
// connection is accepted. This is what lets the nftables guard and the config name agents by UID.
import type { Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import { establishedOwner, localEndOwners, originalDestination, type Endpoint, type Transport } from './sock-diag.js';

export interface SocketPair {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** What identity may rely on about who opened a client socket. */
export type SocketOwner =
  /** UIDs name no agent for this client: it is on another host, or no agent lists uids */
  | { readonly kind: 'unused' }
  | { readonly kind: 'uid'; readonly uid: number }
  /** a local client whose socket has no single live owner: refused, never guessed */
  | { readonly kind: 'unknown'; readonly reason: string };

export const OWNER_UNUSED: SocketOwner = { kind: 'unused' };

export function socketPair(socket: Socket): SocketPair {
  return {
    remoteAddress: socket.remoteAddress ?? '0.0.0.0',
    remotePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? '0.0.0.0',
    localPort: socket.localPort ?? 0,
  };
}

/** The accepted socket's descriptor, which SO_ORIGINAL_DST is asked on. Node keeps it on its handle. */
function descriptorOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the accepted socket has no file descriptor (already closed)');
  return fd;
}

function failed(error: unknown): SocketOwner {
  return { kind: 'unknown', reason: error instanceof Error ? error.message : String(error) };
}

function ownerOf(client: Endpoint, peer: Endpoint): SocketOwner {
  const uid = establishedOwner(client, peer);
  // A client that closed or half-closed before it was accepted leaves a TIME_WAIT or FIN_WAIT
  // socket that reports uid 0 (or none): taking it would hand the connection to root's agent.
  if (uid === undefined) return { kind: 'unknown', reason: `no ESTABLISHED socket ${client.address}:${client.port} -> ${peer.address}:${peer.port}` };
  return { kind: 'uid', uid };
}

/** The owner of the client end of a connection the client addressed to us directly. */
export function connectedOwner(pair: SocketPair): SocketOwner {
  try {
    return ownerOf({ address: pair.remoteAddress, port: pair.remotePort }, { address: pair.localAddress, port: pair.localPort });
  } catch (error) {
    return failed(error);
  }
}

/**
 * The owner of a client connection the nft guard redirected to us: its socket's peer is the
 * address it dialled, which the kernel's NAT entry for our accepted socket remembers.
 */
export function redirectedOwner(socket: Socket, pair: SocketPair): SocketOwner {
  try {
    const dialled = originalDestination(descriptorOf(socket), { address: pair.localAddress, port: pair.localPort });
    return ownerOf({ address: pair.remoteAddress, port: pair.remotePort }, dialled);
  } catch (error) {
    return failed(error);
  }
}

/**
 * The owner of the live socket bound to the client's (address, port), whatever its peer: for DNS
 * queries, where no accepted socket names the dialled address. An unconnected UDP socket is
 * listed under the wildcard address it is bound to. None or several users is no owner.
 */
export function localEndOwner(transport: Transport, address: string, port: number): SocketOwner {
  try {
    let owners = new Set(localEndOwners(transport, address, port));
    if (owners.size === 0 && transport === 'udp') {
      // An IPv4 sender may also be a dual-stack socket bound to `::`.
      const wildcards = ipaddr.process(address).kind() === 'ipv4' ? ['0.0.0.0', '::'] : ['::'];
      owners = new Set(wildcards.flatMap((wildcard) => localEndOwners('udp', wildcard, port)));
    }
    const [uid] = owners;
    if (owners.size === 1 && uid !== undefined) return { kind: 'uid', uid };
    return { kind: 'unknown', reason: `${owners.size === 0 ? 'no' : 'more than one'} live ${transport} socket owner for ${address}:${port}` };
  } catch (error) {
    return failed(error);
  }
}
