// The active blocklist: every source's compiled list plus the operators' allow-exceptions,
// answering "is this host or address listed, and by which source and entry" without allocating.
import ipaddr from 'ipaddr.js';
import { compileText, type CompiledList } from './compile.js';
import { DomainTable, HASH_SEED, hashStep } from './domain-table.js';

export interface BlocklistSource {
  readonly name: string;
  readonly list: CompiledList;
}

export interface BlocklistMatch {
  /** the source's name from sources.yaml, or `local` */
  readonly source: string;
  /** the listed name (a parent of the host, or the host itself) or address */
  readonly entry: string;
}

const DOT = 46;
const DOTTED_QUAD = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

/** The spelling a Destination or a list entry uses for an address; IPv4-mapped IPv6 becomes IPv4. */
export function canonicalAddress(address: string): string | null {
  if (DOTTED_QUAD.test(address)) return address;
  if (!ipaddr.isValid(address)) return null;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return parsed.toNormalizedString() === '0:0:0:0:0:0:0:0' ? '::' : parsed.toString();
}

export class BlocklistSet {
  private readonly tables: readonly DomainTable[];
  private readonly names: readonly string[];

  constructor(
    readonly sources: readonly BlocklistSource[],
    private readonly exceptions: CompiledList = compileText('', 'domains'),
  ) {
    // Empty lists (an unused local.txt) would only cost probes on every lookup.
    const listing = sources.filter((source) => source.list.names.size > 0);
    this.tables = listing.map((source) => source.list.names);
    this.names = listing.map((source) => source.name);
  }

  static empty(): BlocklistSet {
    return new BlocklistSet([]);
  }

  /** Distinct entries over all sources (an entry listed by two sources counts twice). */
  get entries(): number {
    return this.sources.reduce((sum, source) => sum + source.list.entries, 0);
  }

  /**
   * Matches a normalised host (a Destination's `host`): the host itself or any parent domain.
   * The most specific listed name wins; an allow-exception as specific or more specific than
   * it lets the host through.
   */
  match(host: string): BlocklistMatch | null {
    // A normalised name never ends in a digit (that would make it IPv4), so this finds literals.
    const last = host.charCodeAt(host.length - 1);
    if ((last >= 48 && last <= 57) || host.includes(':')) return this.matchAddress(host);
    let hash = HASH_SEED;
    let blockedAt = -1;
    let blockedBy = -1;
    let allowedAt = -1;
    for (let i = host.length - 1; i >= 0; i--) {
      hash = hashStep(hash, host.charCodeAt(i));
      if (i !== 0 && host.charCodeAt(i - 1) !== DOT) continue;
      if (this.exceptions.names.size > 0 && this.exceptions.names.hasSuffix(host, i, hash)) allowedAt = i;
      for (let s = 0; s < this.tables.length; s++) {
        if (this.tables[s]?.hasSuffix(host, i, hash) === true) {
          blockedAt = i;
          blockedBy = s;
          break;
        }
      }
    }
    if (blockedAt < 0 || (allowedAt >= 0 && allowedAt <= blockedAt)) return null;
    return { source: this.names[blockedBy] ?? '', entry: blockedAt === 0 ? host : host.slice(blockedAt) };
  }

  /** The allow-exception that covers a host, if any: for `sluice blocklist check`. */
  exceptionFor(host: string): string | null {
    const address = canonicalAddress(host);
    if (address !== null) return this.exceptions.ips.has(address) ? address : null;
    let hash = HASH_SEED;
    let found: string | null = null;
    for (let i = host.length - 1; i >= 0; i--) {
      hash = hashStep(hash, host.charCodeAt(i));
      if ((i === 0 || host.charCodeAt(i - 1) === DOT) && this.exceptions.names.hasSuffix(host, i, hash)) found = host.slice(i);
    }
    return found;
  }

  /** Matches an address the destination resolved to; unparsable input is treated as listed. */
  matchAddress(address: string): BlocklistMatch | null {
    const canonical = canonicalAddress(address);
    // Fail closed: the caller asked about something that is not an address at all.
    if (canonical === null) return { source: 'invalid-address', entry: address };
    if (this.exceptions.ips.has(canonical)) return null;
    for (const source of this.sources) if (source.list.ips.has(canonical)) return { source: source.name, entry: canonical };
    return null;
  }
}
