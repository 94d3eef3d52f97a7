// Turns one DNS query into the response it may have: peer rate limit, form, identity, agent rate
// limit, name screen, policy, upstream lookup and address vetting, in that order, failing closed.
import dnsPacket from 'dns-packet';
import { METADATA_HOST_NAMES, type AddressGuard } from '../../connect/index.js';
import type { Agent } from '../../agent.js';
import { normaliseQueryName, screenName, type NameLimits } from './name-screen.js';
import type { KeyedTokenBucket } from './rate-limiter.js';
import { RCODE, type AddressRecord, type Rcode } from './response.js';
import type { UpstreamResolver } from './upstream.js';

export type DnsVerdict = 'answer' | 'refuse' | 'learn';

/** Closed set: also the `outcome` label of sluice_dns_queries_total. */
export type DnsOutcome =
  | 'answered'
  | 'learned'
  | 'refused'
  | 'suspicious'
  | 'rate_limited'
  | 'type_refused'
  | 'forbidden_address'
  | 'nxdomain'
  | 'upstream_failed'
  | 'unidentified'
  | 'malformed'
  | 'audit_unavailable';

export interface DnsPeer {
  readonly address: string;
  readonly port: number;
  readonly transport: 'udp' | 'tcp';
}

export interface DnsQueryEvent {
  readonly agent: Agent | null;
  readonly peer: DnsPeer;
  readonly name: string;
  readonly type: string;
  readonly outcome: DnsOutcome;
  readonly detail?: string;
  /** addresses the upstream gave that vetting removed from the answer */
  readonly removed: number;
}

export interface QueryDeps {
  readonly identify: (peer: DnsPeer) => Promise<Agent> | Agent;
  readonly decide: (agent: Agent, name: string) => Promise<DnsVerdict> | DnsVerdict;
  readonly addressGuard: Pick<AddressGuard, 'vet'>;
  readonly upstream: Pick<UpstreamResolver, 'query'>;
  /** per agent, once identified */
  readonly limiter: Pick<KeyedTokenBucket, 'take'>;
  /** per peer address, before anything else: bounds the work (and audit counting) of a flood */
  readonly peerLimiter: Pick<KeyedTokenBucket, 'take'>;
  readonly limits: NameLimits;
  readonly refuseWith: 'refused' | 'nxdomain';
}

export interface QueryResult {
  readonly rcode: Rcode;
  readonly records: readonly AddressRecord[];
  readonly event: DnsQueryEvent;
}

const OPCODE_QUERY = 0;
// HTTPS/SVCB (RFC 9460) would hand out ECH configs and alternative endpoints: answer them empty
// so clients fall back to A/AAAA, which we vet. Everything else (TXT, NULL, ...) is a tunnel risk.
// dns-packet 5 names the types it lacks UNKNOWN_<number>; 64 is SVCB and 65 is HTTPS.
const EMPTY_TYPES: ReadonlySet<string> = new Set(['HTTPS', 'SVCB', 'UNKNOWN_64', 'UNKNOWN_65']);

export async function handleQuery(query: dnsPacket.DecodedPacket, peer: DnsPeer, deps: QueryDeps): Promise<QueryResult> {
  const question = query.questions?.[0];
  const rawName = question?.name ?? '';
  const base = { peer, name: normaliseQueryName(rawName), type: question?.type ?? '', removed: 0 };
  const refusal: Rcode = deps.refuseWith === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.REFUSED;
  const done = (rcode: Rcode, agent: Agent | null, outcome: DnsOutcome, detail?: string, records: readonly AddressRecord[] = [], removed = 0): QueryResult => ({
    rcode,
    records,
    event: { ...base, agent, outcome, removed, ...(detail === undefined ? {} : { detail }) },
  });

  // Before identification (a socket-table lookup) and before anything reaches the audit counts.
  if (!deps.peerLimiter.take(peer.address)) return done(RCODE.REFUSED, null, 'rate_limited', 'peer over its query rate');
  const opcode = ((query.flags ?? 0) >> 11) & 0xf;
  if (query.type !== 'query' || opcode !== OPCODE_QUERY || question === undefined || query.questions?.length !== 1 || (question.class ?? 'IN') !== 'IN') {
    return done(RCODE.FORMERR, null, 'malformed', 'expected one IN question in a standard query');
  }
  let agent: Agent;
  try {
    agent = await deps.identify(peer);
  } catch (error) {
    return done(RCODE.REFUSED, null, 'unidentified', error instanceof Error ? error.message : String(error));
  }
  if (!deps.limiter.take(agent.name)) return done(RCODE.REFUSED, agent, 'rate_limited');
  const screened = screenName(base.name, deps.limits);
  if (screened !== null) return done(RCODE.REFUSED, agent, 'suspicious', screened);
  // Metadata names are never answered, whatever the rules: their addresses carry credentials.
  if (METADATA_HOST_NAMES.has(base.name)) return done(refusal, agent, 'forbidden_address', 'metadata service name');
  let verdict: DnsVerdict;
  try {
    verdict = await deps.decide(agent, base.name);
  } catch (error) {
    return done(refusal, agent, 'refused', `policy failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (verdict === 'refuse') return done(refusal, agent, 'refused');
  const allowed: DnsOutcome = verdict === 'learn' ? 'learned' : 'answered';
  if (EMPTY_TYPES.has(question.type)) return done(RCODE.NOERROR, agent, allowed, `${question.type} answered empty`);
  if (question.type !== 'A' && question.type !== 'AAAA') return done(RCODE.REFUSED, agent, 'type_refused');

  const answer = await deps.upstream.query(base.name, question.type);
  if (answer.kind === 'nxdomain') return done(RCODE.NXDOMAIN, agent, 'nxdomain');
  if (answer.kind === 'failed') return done(RCODE.SERVFAIL, agent, 'upstream_failed', answer.reason);
  const kept = answer.records.filter((record) => {
    try {
      return deps.addressGuard.vet(record.address).ok;
    } catch {
      return false;
    }
  });
  const removed = answer.records.length - kept.length;
  // An answer made only of forbidden addresses is a rebinding or SSRF attempt: refuse it whole.
  if (removed > 0 && kept.length === 0) return done(refusal, agent, 'forbidden_address', undefined, [], removed);
  return done(RCODE.NOERROR, agent, allowed, undefined, kept, removed);
}
