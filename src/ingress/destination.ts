// Turns the authority an agent asked for into a Destination: the one normalised (host, port)
// value that every later stage trusts. Only the parsers here can make one.
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';
import { SluiceError } from '../errors.js';

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
// RFC 9112: a target carries no whitespace or control characters; WHATWG URL parsing would
// silently strip tabs and newlines, so check the raw bytes first.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;
// WHATWG host parsing: a name whose last label is numeric is an IPv4 address in some spelling.
const NUMERIC_LAST_LABEL = /(^|\.)(0x[0-9a-f]*|[0-9]+)\.?$/i;

function make(host: string, port: number, kind: HostKind): Destination {
  return { host, port, kind } as Destination;
}

/** Parses a port the way RFC 9110 spells it: decimal digits only, 1..65535. */
export function parsePort(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text)) throw new SluiceError('BAD_PORT', JSON.stringify(text));
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

/** `host:port`, `[v6]:port`: the authority of a CONNECT request or of an absolute URI. */
function splitAuthority(authority: string): { host: string; port: string | undefined } {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new SluiceError('BAD_TARGET', 'unterminated IPv6 literal');
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new SluiceError('BAD_TARGET', 'junk after IPv6 literal');
    return { host: authority.slice(1, close), port: rest === '' ? undefined : rest.slice(1) };
  }
  const colon = authority.lastIndexOf(':');
  if (colon < 0) return { host: authority, port: undefined };
  const host = authority.slice(0, colon);
  if (host.includes(':')) throw new SluiceError('BAD_TARGET', 'IPv6 literal must be in brackets');
  return { host, port: authority.slice(colon + 1) };
}

function checkTarget(target: string): void {
  if (CONTROL_OR_SPACE.test(target)) throw new SluiceError('BAD_TARGET', 'control character or space in request target');
  if (target.includes('@')) throw new SluiceError('BAD_HOST', 'userinfo is not allowed in the destination');
}

/** RFC 9110 §9.3.6: a CONNECT target is exactly `host:port`, nothing else. */
export function parseConnectTarget(target: string): Destination {
  checkTarget(target);
  const { host, port } = splitAuthority(target);
  if (port === undefined) throw new SluiceError('BAD_TARGET', 'CONNECT target must be host:port');
  const normalised = normaliseHost(host);
  return make(normalised.host, parsePort(port), normalised.kind);
}

export interface AbsoluteTarget {
  readonly destination: Destination;
  readonly scheme: 'http' | 'https';
  /** path and query as sent, `/` when the URI had none */
  readonly path: string;
  /** the authority as it must appear in the forwarded Host header */
  readonly authority: string;
}

/** RFC 9112 §3.2.2 absolute-form, `http://host[:port]/path?query`; `https` when a client asks a proxy to originate TLS. */
export function parseAbsoluteTarget(target: string): AbsoluteTarget {
  checkTarget(target);
  const match = /^(https?):\/\/([^/?#]*)([^#]*)$/i.exec(target);
  if (match === null) throw new SluiceError('BAD_TARGET', 'expected an absolute http:// URI');
  const scheme = (match[1] ?? '').toLowerCase() === 'https' ? 'https' : 'http';
  const { host, port } = splitAuthority(match[2] ?? '');
  const normalised = normaliseHost(host);
  const portNumber = port === undefined || port === '' ? (scheme === 'https' ? 443 : 80) : parsePort(port);
  const rawPath = match[3] ?? '';
  const path = rawPath === '' ? '/' : rawPath.startsWith('?') ? `/${rawPath}` : rawPath;
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostPart = normalised.kind === 'ipv6' ? `[${normalised.host}]` : normalised.host;
  return {
    destination: make(normalised.host, portNumber, normalised.kind),
    scheme,
    path,
    authority: portNumber === defaultPort ? hostPart : `${hostPart}:${portNumber}`,
  };
}

/** A Host header value (transparent HTTP), defaulting the port. */
export function parseHostHeader(value: string, defaultPort: number): Destination {
  checkTarget(value);
  const { host, port } = splitAuthority(value);
  const normalised = normaliseHost(host);
  return make(normalised.host, port === undefined ? defaultPort : parsePort(port), normalised.kind);
}

/** For the transparent TLS path: a server name from a ClientHello plus the port the agent dialled. */
export function destinationFromName(name: string, port: number): Destination {
  const normalised = normaliseHost(name);
  return make(normalised.host, port, normalised.kind);
}

export function formatAuthority(destination: Destination): string {
  return destination.kind === 'ipv6' ? `[${destination.host}]:${destination.port}` : `${destination.host}:${destination.port}`;
}
