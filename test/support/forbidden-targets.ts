// The destinations an SSRF test throws at the proxy: one or more addresses from every denied range,
// IP literals in the spellings URL parsers disagree on, and DNS names that lead somewhere internal.
// Written out from docs/denied-ranges.md by hand, not derived from src/, so a drift fails the test.
import type { Zone, ZoneEntry } from './dns-server.js';

export interface ForbiddenTarget {
  /** the host as it appears in a URL or CONNECT target: `10.0.0.1`, `[fd00::1]`, `0x7f.1`, `metadata` */
  readonly host: string;
  /** the address class the audit record, the deny reason and the metric label must name */
  readonly addressClass: string;
  /** what the audit record's `address` must say: the canonical address, or the metadata name */
  readonly address: string;
}

function target(host: string, addressClass: string, address = host.replace(/^\[|\]$/g, '')): ForbiddenTarget {
  return { host, addressClass, address };
}

/** Every metadata address in docs/denied-ranges.md. */
export const METADATA_ADDRESS_TARGETS: readonly ForbiddenTarget[] = [
  '169.254.169.254',
  '169.254.169.253',
  '169.254.169.123',
  '169.254.170.2',
  '169.254.170.23',
  '169.254.0.23',
  '100.100.100.200',
  '168.63.129.16',
  '192.0.0.192',
  '[fd00:ec2::254]',
  '[fd00:ec2::253]',
  '[fd00:ec2::123]',
  '[fd00:ec2::23]',
].map((host) => target(host, 'metadata'));

export const SPECIAL_V4_TARGETS: readonly ForbiddenTarget[] = [
  target('0.0.0.0', 'unspecified'),
  target('0.1.2.3', 'unspecified'),
  target('127.0.0.1', 'loopback'),
  target('127.255.255.254', 'loopback'),
  target('10.0.0.1', 'private'),
  target('172.16.0.1', 'private'),
  target('172.31.255.254', 'private'),
  target('192.168.1.1', 'private'),
  target('100.64.0.1', 'cgnat'),
  target('100.127.255.254', 'cgnat'),
  target('169.254.1.1', 'link_local'),
  target('169.254.254.254', 'link_local'),
  target('224.0.0.1', 'multicast'),
  target('239.255.255.250', 'multicast'),
  target('255.255.255.255', 'broadcast'),
  target('192.0.2.1', 'documentation'),
  target('198.51.100.7', 'documentation'),
  target('203.0.113.9', 'documentation'),
  target('198.18.0.1', 'benchmarking'),
  target('198.19.255.254', 'benchmarking'),
  target('240.0.0.1', 'reserved'),
  target('254.1.2.3', 'reserved'),
  target('192.0.0.8', 'special_purpose'),
  target('192.88.99.1', 'special_purpose'),
];

export const SPECIAL_V6_TARGETS: readonly ForbiddenTarget[] = [
  target('[::]', 'unspecified'),
  target('[::1]', 'loopback'),
  target('[fc00::1]', 'unique_local'),
  target('[fd12:3456:789a::1]', 'unique_local'),
  target('[fe80::1]', 'link_local'),
  target('[fec0::1]', 'site_local'),
  target('[ff02::1]', 'multicast'),
  target('[ff05::1:3]', 'multicast'),
  target('[2001:db8::1]', 'documentation'),
  target('[3fff::1]', 'documentation'),
  target('[2001:2::1]', 'benchmarking'),
  target('[100::1]', 'discard'),
  target('[4000::1]', 'reserved'),
  target('[1::1]', 'reserved'),
  target('[2001:20::1]', 'special_purpose'),
  target('[64:ff9b:1::1]', 'special_purpose'),
  // IPv4 inside IPv6 takes the class of the IPv4 address the packets really go to.
  target('[::ffff:a00:1]', 'private'),
  target('[::ffff:a9fe:a9fe]', 'metadata'),
  target('[::ffff:7f00:1]', 'loopback'),
  target('[::a00:1]', 'private'),
  target('[::a9fe:a9fe]', 'metadata'),
  target('[64:ff9b::7f00:1]', 'loopback'),
  target('[64:ff9b::a9fe:a9fe]', 'metadata'),
  target('[64:ff9b::c0a8:101]', 'private'),
  target('[2002:a00:1::]', 'private'),
  target('[2002:a9fe:a9fe::1]', 'metadata'),
  // Teredo (RFC 4380 §4): the client address is stored inverted, the server address in clear.
  target('[2001:0:808:808::f5ff:fffe]', 'private'),
  target('[2001:0:808:808::5601:5601]', 'metadata'),
  target('[2001:0:a00:1::f7f7:f7f7]', 'private'),
];

/**
 * IPv4 in the spellings WHATWG and BSD inet_aton accept (decimal, octal, hex, short forms) and
 * IPv6 spellings of the same addresses. curl rewrites most of them before sending, so these also
 * go to the proxy byte for byte on a raw socket.
 */
export const SPELLING_TARGETS: readonly ForbiddenTarget[] = [
  target('2130706433', 'loopback', '127.0.0.1'),
  target('0177.0.0.1', 'loopback', '127.0.0.1'),
  target('0x7f.1', 'loopback', '127.0.0.1'),
  target('0x7f000001', 'loopback', '127.0.0.1'),
  target('127.1', 'loopback', '127.0.0.1'),
  target('0X7F.0x0.0x0.0x1', 'loopback', '127.0.0.1'),
  target('017700000001', 'loopback', '127.0.0.1'),
  target('127.000.000.001', 'loopback', '127.0.0.1'),
  target('127.0.0.1.', 'loopback', '127.0.0.1'),
  target('0', 'unspecified', '0.0.0.0'),
  target('0251.0376.0251.0376', 'metadata', '169.254.169.254'),
  target('2852039166', 'metadata', '169.254.169.254'),
  target('0xa9fea9fe', 'metadata', '169.254.169.254'),
  target('169.254.43518', 'metadata', '169.254.169.254'),
  target('0xa9.0xfe.0xa9.0xfe', 'metadata', '169.254.169.254'),
  target('012.0.0.1', 'private', '10.0.0.1'),
  target('[::ffff:127.0.0.1]', 'loopback', '::ffff:7f00:1'),
  target('[::ffff:a9fe:a9fe]', 'metadata'),
  target('[::ffff:169.254.169.254]', 'metadata', '::ffff:a9fe:a9fe'),
  target('[0:0:0:0:0:ffff:7f00:1]', 'loopback', '::ffff:7f00:1'),
  target('[64:ff9b::169.254.169.254]', 'metadata', '64:ff9b::a9fe:a9fe'),
  target('[FD00:EC2:0:0:0:0:0:254]', 'metadata', 'fd00:ec2::254'),
  target('[0000::1]', 'loopback', '::1'),
];

const PUBLIC_V4 = '93.184.216.34';

/** Names the test DNS server answers; each leads the proxy somewhere it must not go. */
export const FORBIDDEN_NAME_TARGETS: readonly (ForbiddenTarget & { readonly zone: ZoneEntry })[] = [
  { host: 'imds-alias.test', addressClass: 'metadata', address: '169.254.169.254', zone: { A: ['169.254.169.254'] } },
  { host: 'ecs-credentials.test', addressClass: 'metadata', address: '169.254.170.2', zone: { A: ['169.254.170.2'] } },
  { host: 'alibaba-alias.test', addressClass: 'metadata', address: '100.100.100.200', zone: { A: ['100.100.100.200'] } },
  { host: 'imds-v6.test', addressClass: 'metadata', address: 'fd00:ec2::254', zone: { AAAA: ['fd00:ec2::254'] } },
  { host: 'imds-mapped.test', addressClass: 'metadata', address: '::ffff:a9fe:a9fe', zone: { AAAA: ['::ffff:169.254.169.254'] } },
  { host: 'internal.test', addressClass: 'private', address: '10.1.2.3', zone: { A: ['10.1.2.3'] } },
  { host: 'loopback.test', addressClass: 'loopback', address: '127.0.0.1', zone: { A: ['127.0.0.1'] } },
  { host: 'zero.test', addressClass: 'unspecified', address: '0.0.0.0', zone: { A: ['0.0.0.0'] } },
  // DNS rebinding: one public answer to pass a naive check, one internal answer to connect to.
  { host: 'rebind.test', addressClass: 'private', address: '192.168.0.10', zone: { A: [PUBLIC_V4, '192.168.0.10'] } },
  { host: 'rebind-metadata.test', addressClass: 'metadata', address: '169.254.169.254', zone: { A: [PUBLIC_V4, '169.254.169.254'] } },
  { host: 'rebind-v6.test', addressClass: 'unique_local', address: 'fd00::1', zone: { A: [PUBLIC_V4], AAAA: ['fd00::1'] } },
];

/** docs/denied-ranges.md "Metadata host names", plus spellings that normalise to one of them. */
export const METADATA_NAME_TARGETS: readonly ForbiddenTarget[] = [
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
  'metadata.packet.net',
]
  .map((host) => target(host, 'metadata'))
  .concat([
    target('METADATA.Google.Internal.', 'metadata', 'metadata.google.internal'),
    target('instance-data.', 'metadata', 'instance-data'),
  ]);

/** Addresses and metadata names hidden behind percent-encoding, which only a raw request carries to the proxy. */
export const PERCENT_ENCODED_LITERALS: readonly string[] = ['127.0.0.1%2e', '%31%32%37.0.0.%31', '169.254.169.254%2e', '0x7f.1%2e', '%6detadata.goog'];

export const PUBLIC_NAME = 'public.test';
export const PUBLIC_ADDRESSES = [PUBLIC_V4, '2606:4700::1111'] as const;

/**
 * The zone behind `connect.resolvers`. Metadata names get a public answer: had the proxy asked,
 * it would have dialled, so only the name check can deny them.
 */
export function ssrfZone(): Zone {
  const zone: Record<string, ZoneEntry> = { [PUBLIC_NAME]: { A: [PUBLIC_V4], AAAA: ['2606:4700::1111'] } };
  for (const entry of FORBIDDEN_NAME_TARGETS) zone[entry.host] = entry.zone;
  for (const entry of METADATA_NAME_TARGETS) zone[entry.address] = { A: [PUBLIC_V4] };
  return zone;
}
