// Classifies an IP address into a closed set of classes, from the IANA IPv4 and IPv6
// special-purpose registries plus the cloud metadata endpoints. Only 'public' may be dialled.
import ipaddr from 'ipaddr.js';
import { SluiceError } from '../errors.js';

/**
 * Every class an address can fall in. The names double as deny reasons and metric label values,
 * so the set is closed: adding one is a deliberate change to docs/denied-ranges.md too.
 */
export const ADDRESS_CLASSES = [
  'public',
  /** cloud instance metadata, credentials and platform endpoints: never allowed */
  'metadata',
  /** an address of one of this host's own interfaces (set by the guard, not by the tables below) */
  'local_interface',
  'unspecified',
  'loopback',
  'private',
  'cgnat',
  'link_local',
  'multicast',
  'broadcast',
  'documentation',
  'benchmarking',
  /** 240.0.0.0/4 and IPv6 space outside 2000::/3 that IANA has not given a purpose */
  'reserved',
  'unique_local',
  'site_local',
  'discard',
  /** IETF protocol assignments, relay anycast and translation prefixes (RFC 6890) */
  'special_purpose',
] as const;

export type AddressClass = (typeof ADDRESS_CLASSES)[number];

type Range<T> = readonly [T, number];

function table<T, K>(parse: (text: string) => [T, number], rows: readonly (readonly [string, K])[]): readonly (readonly [Range<T>, K])[] {
  return rows.map(([cidr, kind]) => [parse(cidr), kind] as const);
}

// Metadata endpoints come first: several sit inside ranges with a milder class (100.100.100.200 is
// CGNAT) or in public space (168.63.129.16), and they must never be allowed by an allow_cidr.
/** Every cloud metadata address, as written in docs/denied-ranges.md. */
export const METADATA_ADDRESSES: readonly string[] = [
  '169.254.169.254', // AWS, GCP, Azure, OCI, DigitalOcean, OpenStack instance metadata
  '169.254.169.253', // Amazon VPC DNS resolver
  '169.254.169.123', // Amazon Time Sync
  '169.254.170.2', // Amazon ECS task metadata and credentials
  '169.254.170.23', // Amazon EKS Pod Identity credentials
  '169.254.0.23', // Tencent Cloud metadata
  '100.100.100.200', // Alibaba Cloud metadata
  '168.63.129.16', // Azure WireServer and platform DNS
  '192.0.0.192', // Oracle Cloud Classic metadata
  'fd00:ec2::254', // AWS instance metadata over IPv6 (Nitro)
  'fd00:ec2::253', // Amazon VPC DNS resolver over IPv6
  'fd00:ec2::123', // Amazon Time Sync over IPv6
  'fd00:ec2::23', // Amazon EKS Pod Identity over IPv6
];
const METADATA_V4 = new Set(METADATA_ADDRESSES.filter((text) => !text.includes(':')));
const METADATA_V6 = new Set(METADATA_ADDRESSES.filter((text) => text.includes(':')).map((text) => ipaddr.IPv6.parse(text).toString()));

// First match wins, so narrower ranges precede the ranges that contain them. Both tables are
// exported so a test can hold docs/denied-ranges.md to them.
export const SPECIAL_RANGES_V4: readonly (readonly [string, AddressClass])[] = [
  ['0.0.0.0/8', 'unspecified'], // RFC 1122 "this network": Linux connects 0.0.0.0 to itself
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'cgnat'], // RFC 6598
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link_local'], // RFC 3927
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'special_purpose'], // RFC 6890 IETF protocol assignments
  ['192.0.2.0/24', 'documentation'], // RFC 5737 TEST-NET-1
  ['192.88.99.0/24', 'special_purpose'], // RFC 7526 deprecated 6to4 relay anycast
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'], // RFC 2544
  ['198.51.100.0/24', 'documentation'], // TEST-NET-2
  ['203.0.113.0/24', 'documentation'], // TEST-NET-3
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'], // RFC 1112 class E
];

/** 'embedded': judged by the IPv4 address inside (mapped, compatible, NAT64, 6to4, Teredo). */
export const SPECIAL_RANGES_V6: readonly (readonly [string, AddressClass | 'embedded'])[] = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0/96', 'embedded'], // RFC 4291 IPv4-mapped: the kernel dials the IPv4 address
  ['::/96', 'embedded'], // RFC 4291 §2.5.5.1 deprecated IPv4-compatible
  ['64:ff9b::/96', 'embedded'], // RFC 6052 NAT64 well-known prefix
  ['64:ff9b:1::/48', 'special_purpose'], // RFC 8215 local-use translation: reaches local networks
  ['100::/64', 'discard'], // RFC 6666
  ['2001::/32', 'embedded'], // RFC 4380 Teredo
  ['2001:2::/48', 'benchmarking'], // RFC 5180
  ['2001:db8::/32', 'documentation'], // RFC 3849
  ['2001::/23', 'special_purpose'], // RFC 2928 IETF protocol assignments, fail closed on all of it
  ['2002::/16', 'embedded'], // RFC 3056 6to4
  ['3fff::/20', 'documentation'], // RFC 9637
  ['fc00::/7', 'unique_local'], // RFC 4193
  ['fe80::/10', 'link_local'],
  ['fec0::/10', 'site_local'], // RFC 3879 deprecated, still routed on some networks
  ['ff00::/8', 'multicast'],
];

const V4_RANGES = table((text) => ipaddr.IPv4.parseCIDR(text), SPECIAL_RANGES_V4);
const V6_RANGES = table((text) => ipaddr.IPv6.parseCIDR(text), SPECIAL_RANGES_V6);

// Only 2000::/3 is global unicast (RFC 4291 §2.4); anything else not named above is unassigned.
const GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

function classifyV4(address: ipaddr.IPv4): AddressClass {
  if (METADATA_V4.has(address.toString())) return 'metadata';
  for (const [range, kind] of V4_RANGES) {
    if (address.match(range[0], range[1])) return kind;
  }
  return 'public';
}

function v4FromWords(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** The IPv4 address(es) an embedding form hands traffic to; every one must be public. */
function embeddedV4(address: ipaddr.IPv6): ipaddr.IPv4[] {
  const parts = address.parts;
  const word = (index: number): number => parts[index] ?? 0;
  if (word(0) === 0x2002) return [v4FromWords(word(1), word(2))];
  if (word(0) === 0x2001 && word(1) === 0) {
    // RFC 4380 §4: the client address is stored inverted; the server address is in clear.
    return [v4FromWords(word(6) ^ 0xffff, word(7) ^ 0xffff), v4FromWords(word(2), word(3))];
  }
  return [v4FromWords(word(6), word(7))];
}

function classifyV6(address: ipaddr.IPv6): AddressClass {
  const plain = new ipaddr.IPv6(address.parts);
  if (METADATA_V6.has(plain.toString())) return 'metadata';
  for (const [range, kind] of V6_RANGES) {
    if (!plain.match(range[0], range[1])) continue;
    if (kind !== 'embedded') return kind;
    for (const inner of embeddedV4(plain)) {
      const innerClass = classifyV4(inner);
      if (innerClass !== 'public') return innerClass;
    }
    return 'public';
  }
  return plain.match(GLOBAL_UNICAST[0], GLOBAL_UNICAST[1]) ? 'public' : 'reserved';
}

/** An IPv4 dotted quad or an IPv6 address (optionally with a zone), as resolvers return them. */
export function parseAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (ipaddr.IPv4.isValidFourPartDecimal(ip)) return ipaddr.IPv4.parse(ip);
  if (ip.includes(':') && ipaddr.IPv6.isValid(ip)) return ipaddr.IPv6.parse(ip);
  // Only canonical spellings reach here; anything else is a bug upstream, so refuse to guess.
  throw new SluiceError('BAD_HOST', `not a canonical IP address ${JSON.stringify(ip)}`);
}

export function classifyParsed(address: ipaddr.IPv4 | ipaddr.IPv6): AddressClass {
  return address instanceof ipaddr.IPv4 ? classifyV4(address) : classifyV6(address);
}

export function classifyAddress(ip: string): AddressClass {
  return classifyParsed(parseAddress(ip));
}
