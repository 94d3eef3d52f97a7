// Identity for connections and datagrams the nft guard redirected. The agent's socket names the
// address it dialled as its peer, so its owner is found through that address, not through ours.
import type { Socket } from 'node:net';
import { IdentityResolver, type ClientConnection } from './identify.js';
import type { Transport } from './sock-diag.js';
import { localEndOwner, OWNER_UNUSED, redirectedOwner, type SocketOwner, type SocketPair } from './socket-owner.js';

/**
 * The transparent listeners bind loopback only, and packets to loopback never arrive from another
 * host, so every client is local: when agents are named by uid, each one's owner must be found.
 */
export class RedirectedIdentity extends IdentityResolver {
  protected override ownerOf(socket: Socket, pair: SocketPair): SocketOwner {
    return redirectedOwner(socket, pair);
  }

  /** For a DNS query: its UDP or TCP source, by the socket bound to that (address, port). */
  peer(transport: Transport, pair: SocketPair): ClientConnection {
    return { pair, owner: this.usesUids ? localEndOwner(transport, pair.remoteAddress, pair.remotePort) : OWNER_UNUSED };
  }
}
