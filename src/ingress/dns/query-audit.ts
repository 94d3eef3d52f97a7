// Decides what the audit chain hears of each DNS query: a screened refusal is one record, durable
// before the answer goes out; floods, malformed and unscreened queries are only counted.
import type { AuditChain } from '../../audit/chain.js';
import { dnsEntry, type AuditLog } from '../../audit/kinds.js';
import type { Logger } from '../../obs/log.js';
import type { DnsOutcome, DnsQueryEvent } from './handle-query.js';
import { DnsSummary, type DnsSummaryOptions } from './summary.js';

/**
 * `record`: the query passed identity, both rate limits and the name screen, so its name is safe
 * to write and its volume is bounded by the agent's rate. `count`: an agent chooses how many of
 * these arrive and what they carry, so they only add to the periodic `dns_summary`. Answered
 * queries are too many to audit one by one: they are counted too, so the trail (and a SIEM) sees
 * how much each agent resolved.
 */
const AUDIT: Readonly<Record<DnsOutcome, 'record' | 'count'>> = {
  answered: 'count',
  learned: 'record',
  refused: 'record',
  type_refused: 'record',
  forbidden_address: 'record',
  nxdomain: 'record',
  upstream_failed: 'record',
  suspicious: 'count',
  rate_limited: 'count',
  unidentified: 'count',
  malformed: 'count',
  audit_unavailable: 'count',
};

export class DnsQueryAudit {
  private readonly summary: DnsSummary;

  constructor(
    private readonly chain: AuditLog & Pick<AuditChain, 'failure'>,
    summary: Omit<DnsSummaryOptions, 'chain'>,
    private readonly log?: Logger,
  ) {
    this.summary = new DnsSummary({ ...summary, chain });
  }

  /** Writes the summary of what was counted since the last one; nothing is scheduled after. */
  close(): Promise<void> {
    return this.summary.close();
  }

  /**
   * Audits one query as its outcome demands. True when its answer may go out; false when the
   * audit chain cannot take records, and then the query is answered SERVFAIL (and counted so).
   */
  async record(event: DnsQueryEvent): Promise<boolean> {
    let recorded = this.chain.failure === null;
    const how = AUDIT[event.outcome];
    if (how === 'record' && recorded) {
      try {
        await this.chain.append(dnsEntry(event));
      } catch (error) {
        this.log?.debug({ err: error }, 'DNS record refused by the audit chain; answering SERVFAIL');
        recorded = false;
      }
    }
    if (!recorded) this.summary.count(event.agent?.name ?? null, event.peer.address, 'audit_unavailable');
    else if (how === 'count') this.summary.count(event.agent?.name ?? null, event.peer.address, event.outcome);
    return recorded;
  }
}
