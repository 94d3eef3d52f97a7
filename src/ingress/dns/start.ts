// Builds and starts the policy DNS server from the config: the listen.dns address (and its
// loopback twin), upstreams, name limits and auditing, with the identity and rate limits it is given.
import type { AuditChain } from '../../audit/chain.js';
import type { AuditLog } from '../../audit/kinds.js';
import type { Schedule } from '../../audit/schedule.js';
import type { ConfigFile } from '../../config/schema.js';
import type { RedirectedIdentity } from '../../identity/redirected.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import type { Agent } from '../../agent.js';
import type { Policy } from '../../policy/decide.js';
import { redirectTargets } from '../redirect-targets.js';
import type { DnsQueryEvent, QueryDeps } from './handle-query.js';
import { dnsVerdict } from './policy-verdict.js';
import { DnsQueryAudit } from './query-audit.js';
import { PolicyDnsServer } from './server.js';
import { UpstreamResolver } from './upstream.js';

/** `limiter` and `peerLimiter` as dnsRateLimiters makes them from the config. */
export interface PolicyDnsSetup extends Pick<QueryDeps, 'addressGuard' | 'limiter' | 'peerLimiter'> {
  readonly config: ConfigFile;
  /** the policy in force now, as the proxy sees it */
  readonly policy: () => Policy;
  /** the time decisions are taken at (approvals expire by it) */
  readonly now: () => number;
  /** who sent a query: the owner of its source socket, found as for redirected connections */
  readonly identity: Pick<RedirectedIdentity, 'identify' | 'peer'>;
  readonly metrics?: Pick<Metrics, 'dnsQueries'>;
  /** screened refusals and Learn get a record each, the rest a periodic dns_summary */
  readonly audit?: AuditLog & Pick<AuditChain, 'failure'>;
  /** when summaries are written; tests drive it by hand */
  readonly summarySchedule?: Schedule;
  readonly log?: Logger;
  /** each name the policy refused, with the policy that refused it (access requests) */
  readonly onRefused?: (policy: Policy, agent: Agent, name: string) => void;
  /** one call per query, for anything else the composition root wants to do with it */
  readonly onQuery?: (event: DnsQueryEvent) => void;
}

export interface RunningPolicyDns {
  readonly port: number;
  /** stops listening, then writes the last summary */
  close(): Promise<void>;
}

export async function startPolicyDns(setup: PolicyDnsSetup): Promise<RunningPolicyDns> {
  const { config, audit, identity } = setup;
  const targets = redirectTargets(config.listen.dns);
  const upstream = new UpstreamResolver({ servers: config.dns.upstreams.length > 0 ? config.dns.upstreams : config.connect.resolvers, timeoutMs: config.dns.timeout_ms });
  const summary = {
    intervalMs: config.dns.summary_interval_ms,
    ...(setup.summarySchedule === undefined ? {} : { schedule: setup.summarySchedule }),
    ...(setup.log === undefined ? {} : { log: setup.log }),
  };
  const queryAudit = audit === undefined ? undefined : new DnsQueryAudit(audit, summary, setup.log);
  const server = new PolicyDnsServer({
    hosts: targets.map((target) => target.host),
    port: targets[0]?.port ?? 0,
    identify: (peer) =>
      identity.identify({ kind: 'none' }, identity.peer(peer.transport, { remoteAddress: peer.address, remotePort: peer.port, localAddress: '', localPort: 0 })),
    decide: (agent, name) => {
      const policy = setup.policy();
      const verdict = dnsVerdict(policy, agent, name, setup.now());
      if (verdict === 'refuse') setup.onRefused?.(policy, agent, name);
      return verdict;
    },
    addressGuard: setup.addressGuard,
    upstream,
    limiter: setup.limiter,
    peerLimiter: setup.peerLimiter,
    limits: { maxLabelLength: config.dns.max_label_length, maxNameLength: config.dns.max_name_length },
    refuseWith: config.dns.refuse_with,
    ...(setup.onQuery === undefined ? {} : { onQuery: setup.onQuery }),
    ...(queryAudit === undefined ? {} : { record: (event: DnsQueryEvent) => queryAudit.record(event) }),
    ...(setup.metrics === undefined ? {} : { countQuery: (outcome: string) => setup.metrics?.dnsQueries.inc({ outcome }) }),
  });
  await server.start();
  return {
    port: server.port,
    close: async () => {
      await server.stop();
      upstream.cancel();
      await queryAudit?.close();
    },
  };
}
