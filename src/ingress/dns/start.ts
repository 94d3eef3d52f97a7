// Builds and starts the policy DNS server from the config: the listen.dns address (and its
// loopback twin), upstreams, limits, and identity by the querying socket's owner.
import type { AuditChain } from '../../audit/chain.js';
import type { AuditFields } from '../../audit/record.js';
import type { ConfigFile } from '../../config/schema.js';
import type { AddressGuard } from '../../connect/address-guard.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import type { Policy } from '../../policy/decide.js';
import { redirectTargets } from '../transparent/listen.js';
import { RedirectedIdentity } from '../transparent/redirected-owner.js';
import type { DnsQueryEvent } from './handle-query.js';
import { dnsVerdict } from './policy-verdict.js';
import { KeyedTokenBucket } from './rate-limiter.js';
import { PolicyDnsServer } from './server.js';
import { UpstreamResolver } from './upstream.js';

export interface PolicyDnsSetup {
  readonly config: ConfigFile;
  /** the policy in force now, as the proxy sees it */
  readonly policy: () => Policy;
  readonly guard: Pick<AddressGuard, 'vet'>;
  readonly metrics?: Pick<Metrics, 'dnsQueries'>;
  /** every query that was not simply answered (refusals, Learn, floods) gets an audit record */
  readonly audit?: Pick<AuditChain, 'append'>;
  readonly log?: Logger;
  /** one call per query, for anything else the composition root wants to do with it */
  readonly onQuery?: (event: DnsQueryEvent) => void;
}

export function dnsAuditFields(event: DnsQueryEvent): AuditFields {
  return {
    kind: 'dns',
    agent: event.agent?.name ?? null,
    via: event.agent?.via ?? null,
    client: `${event.peer.address}:${event.peer.port}`,
    transport: event.peer.transport,
    name: event.name,
    type: event.type,
    outcome: event.outcome,
    detail: event.detail ?? null,
    removed: event.removed,
  };
}

export interface RunningPolicyDns {
  readonly port: number;
  close(): Promise<void>;
}

export async function startPolicyDns(setup: PolicyDnsSetup): Promise<RunningPolicyDns> {
  const { config } = setup;
  const targets = redirectTargets(config.listen.dns);
  const identity = new RedirectedIdentity(config);
  const upstream = new UpstreamResolver({ servers: config.dns.upstreams.length > 0 ? config.dns.upstreams : config.connect.resolvers, timeoutMs: config.dns.timeout_ms });
  // A flood is recorded, not every query of it: one record per agent per 10 s keeps the audit
  // log from becoming the thing the flood fills.
  const floodNotices = new KeyedTokenBucket(0.1, 1);
  const server = new PolicyDnsServer({
    hosts: targets.map((target) => target.host),
    port: targets[0]?.port ?? 0,
    identify: (peer) =>
      identity.identify({ kind: 'none' }, identity.peer(peer.transport, { remoteAddress: peer.address, remotePort: peer.port, localAddress: '', localPort: 0 })),
    decide: (agent, name) => dnsVerdict(setup.policy(), agent, name),
    guard: setup.guard,
    upstream,
    limiter: new KeyedTokenBucket(config.dns.queries_per_second, config.dns.burst),
    limits: { maxLabelLength: config.dns.max_label_length, maxNameLength: config.dns.max_name_length },
    refuseWith: config.dns.refuse_with,
    onQuery: (event) => {
      setup.onQuery?.(event);
      if (setup.audit === undefined || event.outcome === 'answered') return;
      if (event.outcome === 'rate_limited' && !floodNotices.take(event.agent?.name ?? event.peer.address)) return;
      setup.audit.append(dnsAuditFields(event)).catch((error: unknown) => setup.log?.error({ err: error }, 'audit append of a DNS record failed'));
    },
    ...(setup.metrics === undefined ? {} : { countQuery: (outcome: string) => setup.metrics?.dnsQueries.inc({ outcome }) }),
  });
  await server.start();
  return {
    port: server.port,
    close: async () => {
      await server.stop();
      upstream.cancel();
    },
  };
}
