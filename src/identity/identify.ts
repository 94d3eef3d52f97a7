// Attributes a connection to an agent: a proxy token first, then the UID owning the client socket
// (same host only), then the source address. Nothing the agent can merely assert picks the name.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import type { ConfigFile } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import { ANONYMOUS_AGENT_NAME, type Agent, type IdentitySource, type Mode } from '../agent.js';
import type { PresentedCredential } from './proxy-credentials.js';
import type { AgentModes } from './agent-modes.js';
import { loadSockDiag } from './sock-diag.js';
import { connectedOwner, OWNER_UNUSED, socketPair, type SocketOwner, type SocketPair } from './socket-owner.js';

interface AgentEntry {
  readonly name: string;
  readonly groups: readonly string[];
  readonly mode: Mode;
}

type ParsedCidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * What the identity stage knows about one client connection, fixed when it is accepted: every
 * request on the connection is attributed from this, however the client's socket changes later.
 */
export interface ClientConnection {
  readonly pair: SocketPair;
  readonly owner: SocketOwner;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

function localAddresses(): Set<string> {
  const addresses = new Set<string>();
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) addresses.add(ipaddr.process(entry.address).toString());
  }
  return addresses;
}

export class IdentityResolver {
  private readonly byTokenHash = new Map<string, AgentEntry>();
  private readonly byUid = new Map<number, AgentEntry>();
  private readonly byCidr: { range: ParsedCidr; agent: AgentEntry }[] = [];
  private readonly anonymous: AgentEntry;
  private readonly local = localAddresses();

  /** `modes`: run-time switches of Learn/Strict, which beat the config's mode for the agents they name */
  constructor(
    config: Pick<ConfigFile, 'agents' | 'mode' | 'anonymous'>,
    private readonly modes?: Pick<AgentModes, 'get'>,
  ) {
    for (const agent of config.agents) {
      const entry: AgentEntry = { name: agent.name, groups: agent.groups, mode: agent.mode ?? config.mode };
      for (const hash of agent.token_sha256) this.byTokenHash.set(hash, entry);
      for (const uid of agent.uids) this.byUid.set(uid, entry);
      for (const cidr of agent.cidrs) this.byCidr.push({ range: ipaddr.parseCIDR(cidr), agent: entry });
    }
    this.anonymous = { name: ANONYMOUS_AGENT_NAME, groups: [], mode: config.anonymous.mode ?? config.mode };
    // Agents named by uid cannot be told apart without the kernel's socket table: no start without it.
    if (this.usesUids) loadSockDiag();
  }

  /** Whether any agent is named by uid; without one, no owner lookup is worth its cost. */
  protected get usesUids(): boolean {
    return this.byUid.size > 0;
  }

  /** Call once, when the connection is accepted, before the client can change its socket's state. */
  connection(socket: Socket): ClientConnection {
    const pair = socketPair(socket);
    return { pair, owner: this.usesUids ? this.ownerOf(socket, pair) : OWNER_UNUSED };
  }

  /** A client on this host is named by the uid owning its socket; one elsewhere by its address. */
  protected ownerOf(_socket: Socket, pair: SocketPair): SocketOwner {
    const remote = ipaddr.process(pair.remoteAddress);
    const isLocal = remote.range() === 'loopback' || this.local.has(remote.toString());
    return isLocal ? connectedOwner(pair) : OWNER_UNUSED;
  }

  /**
   * Throws AUTH_INVALID when a credential is presented but matches no agent, and
   * IDENTITY_UNAVAILABLE when a local client's socket owner is unknown: never a silent downgrade
   * to the address's agent or anonymous.
   */
  identify(credential: PresentedCredential, connection: ClientConnection): Agent {
    switch (credential.kind) {
      case 'malformed':
        throw new SluiceError('AUTH_INVALID', 'Proxy-Authorization must be Bearer TOKEN or Basic with a password');
      case 'token': {
        const agent = this.byTokenHash.get(hashToken(credential.token));
        if (agent === undefined) throw new SluiceError('AUTH_INVALID');
        return this.withSource(agent, 'token');
      }
      case 'none':
        break;
    }
    const owner = connection.owner;
    if (owner.kind === 'unknown') throw new SluiceError('IDENTITY_UNAVAILABLE', owner.reason);
    if (owner.kind === 'uid') {
      const agent = this.byUid.get(owner.uid);
      if (agent !== undefined) return this.withSource(agent, 'uid');
    }
    if (this.byCidr.length > 0) {
      const address = ipaddr.process(connection.pair.remoteAddress);
      for (const { range, agent } of this.byCidr) {
        if (address.kind() === range[0].kind() && address.match(range)) return this.withSource(agent, 'cidr');
      }
    }
    return this.withSource(this.anonymous, 'anonymous');
  }

  private withSource(agent: AgentEntry, via: IdentitySource): Agent {
    return { name: agent.name, groups: agent.groups, mode: this.modes?.get(agent.name) ?? agent.mode, via };
  }
}
