// Turns a Destination into the only thing the dialer accepts: a VettedDestination whose every
// address was resolved once and passed the address guard. Denies the whole name on any bad answer.
import { SluiceError } from '../errors.js';
import type { Destination } from '../destination.js';
import type { Metrics } from '../obs/metrics.js';
import type { AddressClass } from './address-class.js';
import type { AddressGuard } from './address-guard.js';
import type { CachedAnswer, DnsCache } from './dns-cache.js';
import type { ParentProxies, ParentProxy } from './parent-proxy.js';
import type { Resolver } from './resolve.js';

declare const vettedBrand: unique symbol;

export interface VettedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** the allow_cidrs entry that let a non-public address through */
  readonly allowedBy?: string;
}

/** The way to a destination through a parent proxy: the proxy, and the parent's own vetted addresses. */
export interface ParentHop {
  readonly proxy: ParentProxy;
  readonly vetted: VettedDestination;
}

export interface VettedDestination {
  readonly destination: Destination;
  /**
   * in dialling order: families interleaved, IPv6 first (RFC 8305 §4). Through a parent proxy,
   * only an IP literal has one: the parent resolves names itself.
   */
  readonly addresses: readonly VettedAddress[];
  /** set when the connection goes through a parent proxy (connect.upstream_proxy) */
  readonly parent?: ParentHop;
  readonly [vettedBrand]: true;
}

/** DESTINATION_FORBIDDEN with the class (and the address or name) that caused it. */
export class ForbiddenDestinationError extends SluiceError {
  readonly addressClass: AddressClass;
  /** the forbidden address, or the metadata host name when denied before DNS */
  readonly address: string;

  constructor(destination: Destination, addressClass: AddressClass, address: string) {
    super('DESTINATION_FORBIDDEN', `${destination.host} -> ${address} (${addressClass})`);
    this.addressClass = addressClass;
    this.address = address;
  }
}

export interface ResolveAndVetDeps {
  readonly addressGuard: AddressGuard;
  readonly resolver: Resolver;
  /** counts refusals by class; optional so pure callers and tests need no registry */
  readonly metrics?: Pick<Metrics, 'forbiddenDestinations'>;
  /** vetted answers by name; absent, every call asks the resolver */
  readonly cache?: DnsCache<readonly VettedAddress[]> | undefined;
  /** the parent proxies destinations may go through; absent, every destination is direct */
  readonly parents?: ParentProxies | undefined;
}

// RFC 6761 §6.3: these names are the host's own loopback wherever they are resolved, so through a
// parent they would reach the parent's loopback services. Refused by name; no_proxy sends them direct.
const LOOPBACK_NAME = /(^|\.)localhost$/;

/** RFC 8305 §4: alternate families so one broken family costs one attempt delay, not a timeout per address. */
function interleave(addresses: readonly VettedAddress[]): VettedAddress[] {
  const v6 = addresses.filter((entry) => entry.family === 6);
  const v4 = addresses.filter((entry) => entry.family === 4);
  const ordered: VettedAddress[] = [];
  for (let index = 0; index < Math.max(v6.length, v4.length); index++) {
    const six = v6[index];
    const four = v4[index];
    if (six !== undefined) ordered.push(six);
    if (four !== undefined) ordered.push(four);
  }
  return ordered;
}

function vetAll(destination: Destination, guard: AddressGuard, candidates: readonly string[]): VettedAddress[] {
  const vetted: VettedAddress[] = [];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    const verdict = guard.vet(candidate);
    // One bad answer condemns the name: a mix of public and internal answers is how DNS rebinding
    // gets a second, internal connection past a check that only looked at the first.
    if (!verdict.ok) throw new ForbiddenDestinationError(destination, verdict.class, verdict.address);
    if (seen.has(verdict.address)) continue;
    seen.add(verdict.address);
    vetted.push(verdict.allowedBy === undefined ? { address: verdict.address, family: verdict.family } : { address: verdict.address, family: verdict.family, allowedBy: verdict.allowedBy });
  }
  return vetted;
}

// The type brand stops honest mistakes at compile time; this set stops a cast (`as
// VettedDestination`) at run time, so the dialer can refuse anything this module did not make.
const issued = new WeakSet<object>();

function brand(destination: Destination, addresses: readonly VettedAddress[], parent?: ParentHop): VettedDestination {
  const fields = { destination, addresses: Object.freeze(addresses) };
  const vetted = Object.freeze(parent === undefined ? fields : { ...fields, parent }) as VettedDestination;
  issued.add(vetted);
  return vetted;
}

export function isVetted(value: object): value is VettedDestination {
  return issued.has(value);
}

async function lookUp(destination: Destination, deps: ResolveAndVetDeps): Promise<CachedAnswer<readonly VettedAddress[]>> {
  const answers = await deps.resolver.resolveAll(destination.host);
  if (answers.length === 0) return { kind: 'none' };
  const vetted = interleave(vetAll(destination, deps.addressGuard, answers.map((answer) => answer.address)));
  // RFC 2181 §5.2: one RRset has one TTL; across the A and AAAA sets the shorter one bounds both.
  const ttls = answers.map((answer) => answer.ttl);
  const ttlSeconds = ttls.every((ttl) => ttl !== undefined) ? Math.min(...ttls) : undefined;
  return { kind: 'found', value: vetted, ttlSeconds };
}

/** The destination's own vetted addresses: an IP literal as it is, a name through the cache or the resolver. */
async function vetDirect(destination: Destination, deps: ResolveAndVetDeps): Promise<readonly VettedAddress[]> {
  if (destination.kind !== 'name') return vetAll(destination, deps.addressGuard, [destination.host]);
  if (deps.addressGuard.isMetadataName(destination.host)) throw new ForbiddenDestinationError(destination, 'metadata', destination.host);
  const { cache } = deps;
  const { answer, cached } = cache === undefined ? { answer: await lookUp(destination, deps), cached: false } : await cache.get(destination.host, () => lookUp(destination, deps));
  if (answer.kind === 'none') throw new SluiceError('DNS_FAILURE', `${destination.host} has no A or AAAA records`);
  if (!cached) return answer.value;
  // Vetted again on every use: an address can become one of the host's own (a new IP on eth0)
  // while the entry lives, and the guard must refuse it within its polling interval, not a TTL.
  try {
    return vetAll(destination, deps.addressGuard, answer.value.map((entry) => entry.address));
  } catch (error) {
    cache?.delete(destination.host);
    throw error;
  }
}

/**
 * Through a parent proxy, which resolves the name itself: Sluice vets what it can (an IP literal,
 * a metadata or loopback name) and the parent's own address, and leaves the name to the parent.
 */
async function vetThroughParent(destination: Destination, proxy: ParentProxy, deps: ResolveAndVetDeps): Promise<VettedDestination> {
  let own: VettedAddress[] = [];
  if (destination.kind !== 'name') own = vetAll(destination, deps.addressGuard, [destination.host]);
  else if (deps.addressGuard.isMetadataName(destination.host)) throw new ForbiddenDestinationError(destination, 'metadata', destination.host);
  else if (LOOPBACK_NAME.test(destination.host)) throw new ForbiddenDestinationError(destination, 'loopback', destination.host);
  const parent = brand(proxy.destination, await vetDirect(proxy.destination, deps));
  return brand(destination, own, { proxy, vetted: parent });
}

/**
 * Resolves a name once (or takes its vetted answer from the cache) and vets every answer, or vets
 * an IP literal without any DNS. The result is what gets dialled: no second lookup, so no
 * rebinding window. Through a parent proxy, the parent's address is what is resolved and vetted.
 */
export async function resolveAndVet(destination: Destination, deps: ResolveAndVetDeps): Promise<VettedDestination> {
  try {
    const proxy = deps.parents?.routeFor(destination);
    if (proxy !== undefined) return await vetThroughParent(destination, proxy, deps);
    return brand(destination, await vetDirect(destination, deps));
  } catch (error) {
    if (error instanceof ForbiddenDestinationError) deps.metrics?.forbiddenDestinations.inc({ class: error.addressClass });
    throw error;
  }
}
