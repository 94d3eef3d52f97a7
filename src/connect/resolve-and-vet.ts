// Turns a Destination into the only thing the dialer accepts: a VettedDestination whose every
// address was resolved once and passed the address guard. Denies the whole name on any bad answer.
import { SluiceError } from '../errors.js';
import type { Destination } from '../destination.js';
import type { Metrics } from '../obs/metrics.js';
import type { AddressClass } from './address-class.js';
import type { AddressGuard } from './address-guard.js';
import type { Resolver } from './resolve.js';

declare const vettedBrand: unique symbol;

export interface VettedAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** the allow_cidrs entry that let a non-public address through */
  readonly allowedBy?: string;
}

export interface VettedDestination {
  readonly destination: Destination;
  /** in dialling order: families interleaved, IPv6 first (RFC 8305 §4) */
  readonly addresses: readonly VettedAddress[];
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
}

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

function brand(destination: Destination, addresses: readonly VettedAddress[]): VettedDestination {
  const vetted = Object.freeze({ destination, addresses: Object.freeze(addresses) }) as VettedDestination;
  issued.add(vetted);
  return vetted;
}

export function isVetted(value: object): value is VettedDestination {
  return issued.has(value);
}

/**
 * Resolves a name exactly once and vets every answer, or vets an IP literal without any DNS.
 * The result is what gets dialled: no second lookup, so no rebinding window.
 */
export async function resolveAndVet(destination: Destination, deps: ResolveAndVetDeps): Promise<VettedDestination> {
  try {
    if (destination.kind !== 'name') return brand(destination, vetAll(destination, deps.addressGuard, [destination.host]));
    if (deps.addressGuard.isMetadataName(destination.host)) throw new ForbiddenDestinationError(destination, 'metadata', destination.host);
    const answers = await deps.resolver.resolveAll(destination.host);
    if (answers.length === 0) throw new SluiceError('DNS_FAILURE', `${destination.host} has no A or AAAA records`);
    return brand(destination, interleave(vetAll(destination, deps.addressGuard, answers.map((answer) => answer.address))));
  } catch (error) {
    if (error instanceof ForbiddenDestinationError) deps.metrics?.forbiddenDestinations.inc({ class: error.addressClass });
    throw error;
  }
}
