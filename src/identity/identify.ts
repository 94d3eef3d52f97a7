// Attributes a connection to an agent: a proxy token first, then the UID owning the client socket
// (same host only), then the source address. Nothing the agent can merely assert picks the name.
import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import type { ConfigFile } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import { ANONYMOUS_AGENT_NAME, type Agent, type IdentitySource, type Mode } from './agent.js';
import type { PresentedCredential } from './proxy-credentials.js';
import { socketOwnerUid, type SocketPair } from './socket-owner.js';

interface AgentEntry {
  readonly name: string;
  readonly groups: readonly string[];
  readonly mode: Mode;
}

type ParsedCidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** What the identity stage learns about one client connection; the UID lookup runs at most once. */
export class ClientConnection {
  private uidLookup: Promise<number | undefined> | undefined;

  constructor(
    readonly pair: SocketPair,
    private readonly isLocal: boolean,
  ) {}

  ownerUid(): Promise<number | undefined> {
    if (!this.isLocal) return Promise.resolve(undefined);
    this.uidLookup ??= socketOwnerUid(this.pair);
    return this.uidLookup;
  }
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

  constructor(config: Pick<ConfigFile, 'agents' | 'mode' | 'anonymous'>) {
    for (const agent of config.agents) {
      const entry: AgentEntry = { name: agent.name, groups: agent.groups, mode: agent.mode ?? config.mode };
      for (const hash of agent.token_sha256) this.byTokenHash.set(hash, entry);
      for (const uid of agent.uids) this.byUid.set(uid, entry);
      for (const cidr of agent.cidrs) this.byCidr.push({ range: ipaddr.parseCIDR(cidr), agent: entry });
    }
    this.anonymous = { name: ANONYMOUS_AGENT_NAME, groups: [], mode: config.anonymous.mode ?? config.mode };
  }

  connection(pair: SocketPair): ClientConnection {
    const remote = ipaddr.process(pair.remoteAddress);
    const isLocal = this.byUid.size > 0 && (remote.range() === 'loopback' || this.local.has(remote.toString()));
    return new ClientConnection(pair, isLocal);
  }

  /** Throws AUTH_INVALID when a credential is presented but matches no agent: never a silent downgrade to anonymous. */
  async identify(credential: PresentedCredential, connection: ClientConnection): Promise<Agent> {
    switch (credential.kind) {
      case 'malformed':
        throw new SluiceError('AUTH_INVALID', 'Proxy-Authorization must be Bearer TOKEN or Basic with a password');
      case 'token': {
        const agent = this.byTokenHash.get(hashToken(credential.token));
        if (agent === undefined) throw new SluiceError('AUTH_INVALID');
        return withSource(agent, 'token');
      }
      case 'none':
        break;
    }
    const uid = await connection.ownerUid();
    if (uid !== undefined) {
      const agent = this.byUid.get(uid);
      if (agent !== undefined) return withSource(agent, 'uid');
    }
    if (this.byCidr.length > 0) {
      const address = ipaddr.process(connection.pair.remoteAddress);
      for (const { range, agent } of this.byCidr) {
        if (address.kind() === range[0].kind() && address.match(range)) return withSource(agent, 'cidr');
      }
    }
    return withSource(this.anonymous, 'anonymous');
  }
}

function withSource(agent: AgentEntry, via: IdentitySource): Agent {
  return { name: agent.name, groups: agent.groups, mode: agent.mode, via };
}
