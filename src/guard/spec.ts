// What the nftables guard needs from the config: which local users are confined agents, which
// user is Sluice, and the local ports an agent may still reach.
import { splitHostPort } from '../config/host-port.js';
import type { ConfigFile } from '../config/schema.js';
import { SluiceError } from '../errors.js';

export interface GuardPorts {
  readonly proxy: number;
  readonly admin: number;
  readonly transparentHttp: number;
  readonly transparentTls: number;
  readonly dns: number;
}

export interface GuardSpec {
  /** sorted, without duplicates, so the rendered ruleset is byte-for-byte deterministic */
  readonly agentUids: readonly number[];
  readonly agentGids: readonly number[];
  readonly sluiceUser: number | string;
  readonly ports: GuardPorts;
  readonly redirectDns: boolean;
}

/** The port of a `host:port` or `[v6]:port` listen address (the schema has checked its shape). */
export function portOf(hostPort: string): number {
  const { port } = splitHostPort(hostPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SluiceError('BAD_PORT', hostPort);
  return port;
}

function sortedUnique(values: Iterable<number>): number[] {
  return [...new Set(values)].sort((a, b) => a - b);
}

export function guardSpecFromConfig(config: ConfigFile): GuardSpec {
  const ports: GuardPorts = {
    proxy: portOf(config.listen.proxy),
    admin: portOf(config.listen.admin),
    transparentHttp: portOf(config.listen.transparent_http),
    transparentTls: portOf(config.listen.transparent_tls),
    dns: portOf(config.listen.dns),
  };
  const agentReachable: ReadonlyArray<[string, number]> = [
    ['listen.proxy', ports.proxy],
    ['listen.transparent_http', ports.transparentHttp],
    ['listen.transparent_tls', ports.transparentTls],
    ['listen.dns', ports.dns],
  ];
  // The guard tells the two apart by port alone: sharing one would either expose the admin API
  // to agents or cut them off from Sluice.
  for (const [key, port] of agentReachable) {
    if (port === ports.admin) throw new SluiceError('GUARD_APPLY_FAILED', `listen.admin and ${key} share port ${port}`);
  }
  return {
    agentUids: sortedUnique([...config.guard.agent_uids, ...config.agents.flatMap((agent) => agent.uids)]),
    agentGids: sortedUnique(config.guard.agent_gids),
    sluiceUser: config.guard.sluice_user,
    ports,
    redirectDns: config.guard.redirect_dns,
  };
}
