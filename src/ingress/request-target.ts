// Reads the destination out of what an HTTP agent sent: a CONNECT authority, an absolute-form
// URI, or a Host header (RFC 9112 §3.2), refusing anything ambiguous before it becomes one.
import { destinationOf, formatHost, type Destination } from '../destination.js';
import { SluiceError } from '../errors.js';

// RFC 9112: a target carries no whitespace or control characters.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f]/;
const ABSOLUTE_FORM = /^(https?):\/\/([^/?#]*)([^#]*)$/i;

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
  return destinationOf(host, port);
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
  const match = ABSOLUTE_FORM.exec(target);
  if (match === null) throw new SluiceError('BAD_TARGET', 'expected an absolute http:// URI');
  const scheme = (match[1] ?? '').toLowerCase() === 'https' ? 'https' : 'http';
  const { host, port } = splitAuthority(match[2] ?? '');
  const defaultPort = scheme === 'https' ? 443 : 80;
  const destination = destinationOf(host, port === undefined || port === '' ? defaultPort : port);
  const rawPath = match[3] ?? '';
  const path = rawPath === '' ? '/' : rawPath.startsWith('?') ? `/${rawPath}` : rawPath;
  const hostPart = formatHost(destination);
  return { destination, scheme, path, authority: destination.port === defaultPort ? hostPart : `${hostPart}:${destination.port}` };
}

/** A Host header value (transparent HTTP), defaulting the port. */
export function parseHostHeader(value: string, defaultPort: number): Destination {
  checkTarget(value);
  const { host, port } = splitAuthority(value);
  return destinationOf(host, port ?? defaultPort);
}
