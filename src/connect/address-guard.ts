// Decides whether one address (or one metadata host name) may be dialled: public addresses of other
// hosts pass, everything else is denied with its class unless a configured allow_cidr covers it.
import ipaddr from 'ipaddr.js';
import { classifyParsed, parseAddress, type AddressClass } from './address-class.js';
import { ConnectConfigError } from './config-error.js';
import { LocalAddresses, localKey } from './local-addresses.js';

export interface AllowCidrConfig {
  readonly name: string;
  readonly cidr: string;
}

export type AddressVerdict =
  | { readonly ok: true; readonly address: string; readonly family: 4 | 6; readonly allowedBy?: string }
  | { readonly ok: false; readonly address: string; readonly class: AddressClass };

// Names that lead to instance metadata, answered by the platform's own resolver or /etc/hosts.
// Denying them before DNS stops the lookup itself (logged or rate-limited on some platforms) and
// still holds if a platform moves its metadata service to an address not listed yet.
export const METADATA_HOST_NAMES: ReadonlySet<string> = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
  'metadata.packet.net',
]);

interface ParsedAllow {
  readonly name: string;
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

function parseAllow(entry: AllowCidrConfig, index: number): ParsedAllow {
  // The schema only accepts four-part IPv4, so `10/8` cannot silently mean 0.0.0.10/8 here either.
  const valid = ipaddr.IPv4.isValidCIDRFourPartDecimal(entry.cidr) || (entry.cidr.includes(':') && ipaddr.IPv6.isValidCIDR(entry.cidr));
  if (!valid) {
    throw new ConnectConfigError(`connect.allow_cidrs[${index}]`, `${JSON.stringify(entry.name)} has ${JSON.stringify(entry.cidr)}, not a CIDR such as 10.0.0.0/8 or fd00::/8`);
  }
  return { name: entry.name, range: ipaddr.parseCIDR(entry.cidr) };
}

/** The class an address is refused under: the host's own addresses are `local_interface`. */
function effectiveClass(parsed: ipaddr.IPv4 | ipaddr.IPv6, local: Pick<LocalAddresses, 'has'>): AddressClass {
  const addressClass = classifyParsed(parsed);
  // Loopback already names "this host" exactly; metadata must keep its class, which nothing opens.
  if (addressClass === 'loopback' || addressClass === 'metadata') return addressClass;
  return local.has(localKey(parsed)) ? 'local_interface' : addressClass;
}

export class AddressGuard {
  private readonly allow: readonly ParsedAllow[];
  /** the entries that name exactly one address (/32, /128): the only ones that open a local one */
  private readonly allowSingle: readonly ParsedAllow[];

  /** `local` defaults to a one-off read of the interfaces; the app passes a polled set. */
  constructor(
    allowCidrs: readonly AllowCidrConfig[] = [],
    private readonly local: Pick<LocalAddresses, 'has'> = new LocalAddresses(),
  ) {
    this.allow = allowCidrs.map(parseAllow);
    this.allowSingle = this.allow.filter(({ range }) => range[1] === (range[0].kind() === 'ipv4' ? 32 : 128));
  }

  /** True when `host` (a normalised Destination name) is a metadata service name. */
  isMetadataName(host: string): boolean {
    return METADATA_HOST_NAMES.has(host);
  }

  vet(ip: string): AddressVerdict {
    const parsed = parseAddress(ip);
    const address = parsed.toString();
    const family = parsed.kind() === 'ipv4' ? 4 : 6;
    const addressClass = effectiveClass(parsed, this.local);
    if (addressClass === 'public') return { ok: true, address, family };
    // Metadata carries credentials: no deployment setting may open it.
    if (addressClass === 'metadata') return { ok: false, address, class: addressClass };
    // 10.0.0.0/8 opened for the network around an appliance at 10.0.0.5 must not open the
    // appliance itself: its own address has to be named on its own.
    for (const entry of addressClass === 'local_interface' ? this.allowSingle : this.allow) {
      if (parsed.kind() === entry.range[0].kind() && parsed.match(entry.range)) return { ok: true, address, family, allowedBy: entry.name };
    }
    return { ok: false, address, class: addressClass };
  }
}
