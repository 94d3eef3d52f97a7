// The Destination: the one normalised (host, port) value that every stage after ingress trusts.
// A leaf that imports no stage, so policy, connect and ingress all take it from here.
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import { SluiceError } from './errors.js';

declare const destinationBrand: unique symbol;

export type HostKind = 'name' | 'ipv4' | 'ipv6';

export interface Destination {
  /** lower-case punycode name, dotted-quad IPv4, or canonical IPv6 without brackets */
  readonly host: string;
  readonly port: number;
  readonly kind: HostKind;
  readonly [destinationBrand]: true;
}

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
// After IDNA mapping a DNS name holds only these; `_` is allowed because SRV-style and some
// cloud hostnames carry it.
const NAME_CHARS = /^[a-z0-9_.-]+$/;
// WHATWG URL parsing would silently strip tabs and newlines, so check the raw bytes first.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;
// WHATWG host parsing: a name whose last label is numeric is an IPv4 address in some spelling.
const NUMERIC_LAST_LABEL = /(^|\.)(0x[0-9a-f]*|[0-9]+)\.?$/i;
const PORT_DIGITS = /^[0-9]{1,5}$/;

/** Parses a port the way RFC 9110 spells it: decimal digits only, 1..65535. */
export function parsePort(text: string): number {
  if (!PORT_DIGITS.test(text)) throw new SluiceError('BAD_PORT', JSON.stringify(text));
  const port = Number(text);
  if (port < 1 || port > 65535) throw new SluiceError('BAD_PORT', text);
  return port;
}

/**
 * Normalises a host as written by an agent (no brackets for IPv6 here). IPv4 in any spelling
 * (`127.1`, `0x7f.0.0.1`, `2130706433`, octal) comes back as a dotted quad so the address guard
 * cannot be bypassed by notation.
 */
export function normaliseHost(raw: string): { host: string; kind: HostKind } {
  if (raw.length === 0) throw new SluiceError('BAD_HOST', 'empty host');
  if (CONTROL_OR_SPACE.test(raw)) throw new SluiceError('BAD_HOST', 'control character or space in host');
  if (raw.includes('@')) throw new SluiceError('BAD_HOST', 'userinfo is not allowed in the destination');
  // Percent-encoding in a host only serves to hide what it is (`127.0.0.1%2e` decodes to an
  // address); IPv6 zone ids (`%25eth0`) name local interfaces. Neither belongs in an egress target.
  if (raw.includes('%')) throw new SluiceError('BAD_HOST', 'percent-encoding is not allowed in a host');
  if (raw.includes(':')) {
    if (isIP(raw) !== 6) throw new SluiceError('BAD_HOST', `invalid IPv6 literal ${JSON.stringify(raw)}`);
    // The WHATWG serialiser is the canonical form; ipaddr.js would turn ::a.b.c.d (compatible)
    // into ::ffff:a.b.c.d (mapped), a different address.
    return { host: new URL(`http://[${raw}]/`).hostname.slice(1, -1), kind: 'ipv6' };
  }
  let name = raw.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (NUMERIC_LAST_LABEL.test(name)) {
    if (!ipaddr.IPv4.isValid(name)) throw new SluiceError('BAD_HOST', `invalid IPv4 literal ${JSON.stringify(raw)}`);
    return { host: ipaddr.IPv4.parse(name).toString(), kind: 'ipv4' };
  }
  const ascii = domainToASCII(name);
  if (ascii === '') throw new SluiceError('BAD_HOST', `not a valid host name ${JSON.stringify(raw)}`);
  if (ascii.length > MAX_NAME_LENGTH) throw new SluiceError('BAD_HOST', 'host name longer than 253 characters');
  if (!NAME_CHARS.test(ascii)) throw new SluiceError('BAD_HOST', `forbidden character in host ${JSON.stringify(raw)}`);
  for (const label of ascii.split('.')) {
    if (label.length === 0) throw new SluiceError('BAD_HOST', 'empty label in host name');
    if (label.length > MAX_LABEL_LENGTH) throw new SluiceError('BAD_HOST', 'label longer than 63 characters');
  }
  return { host: ascii, kind: 'name' };
}

/**
 * The one way to make a Destination: a host as written (a name, or an IP literal without
 * brackets) and a port, as written (parsed here, after the host) or already a number.
 */
export function destinationOf(host: string, port: string | number): Destination {
  const normalised = normaliseHost(host);
  return { host: normalised.host, port: typeof port === 'number' ? port : parsePort(port), kind: normalised.kind } as Destination;
}

/** The host as a URI or Host header writes it: an IPv6 literal in brackets. */
export function formatHost(destination: Destination): string {
  return destination.kind === 'ipv6' ? `[${destination.host}]` : destination.host;
}

/** `host:port`: how messages, logs and Host headers name a destination. */
export function formatAuthority(destination: Destination): string {
  return `${formatHost(destination)}:${destination.port}`;
}
