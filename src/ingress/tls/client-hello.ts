// Reads the server name from a TLS ClientHello without terminating TLS (RFC 8446 4.1.2, RFC 6066
// 3), from bytes peeked off a redirected connection. Every length is checked against its bounds.
import { isIP } from 'node:net';

/** A ClientHello bigger than this is refused; post-quantum key shares make real ones ~2 KiB. */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_RECORD_FRAGMENT = 16_384; // RFC 8446 5.1: 2^14 for plaintext records
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d; // draft-ietf-tls-esni: the outer SNI is only a decoy
const HOST_NAME_TYPE = 0;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?)*$/;

export interface ClientHello {
  readonly kind: 'hello';
  /** lower-cased host_name, or null when the client sent none */
  readonly sni: string | null;
  /** an encrypted_client_hello extension is present, so the real destination is hidden */
  readonly ech: boolean;
  readonly alpn: readonly string[];
  /** bytes of the records that carried the ClientHello */
  readonly length: number;
}

export type ClientHelloParse =
  | ClientHello
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string };

class Malformed extends Error {}

/** A cursor over one length-delimited region; it never reads past `end`. */
class Reader {
  constructor(
    private readonly bytes: Buffer,
    private offset: number,
    private readonly end: number,
  ) {}

  get remaining(): number {
    return this.end - this.offset;
  }

  private take(count: number, what: string): number {
    if (count > this.remaining) throw new Malformed(`${what} runs past its enclosing length`);
    const start = this.offset;
    this.offset += count;
    return start;
  }

  u8(what: string): number {
    return this.bytes[this.take(1, what)] ?? 0;
  }

  u16(what: string): number {
    return this.bytes.readUInt16BE(this.take(2, what));
  }

  skip(count: number, what: string): void {
    this.take(count, what);
  }

  /** A vector with a length prefix of `prefix` bytes, bounded as its RFC declaration says. */
  vector(prefix: 1 | 2, min: number, max: number, what: string): Reader {
    const length = prefix === 1 ? this.u8(what) : this.u16(what);
    if (length < min || length > max) throw new Malformed(`${what} length ${length} outside ${min}..${max}`);
    const start = this.take(length, what);
    return new Reader(this.bytes, start, start + length);
  }

  text(): string {
    return this.bytes.toString('latin1', this.offset, this.end);
  }

  done(what: string): void {
    if (this.remaining !== 0) throw new Malformed(`${this.remaining} stray bytes after ${what}`);
  }
}

/** Joins handshake fragments from consecutive records; `incomplete` until the whole message is in. */
function reassemble(input: Buffer): { handshake: Buffer; length: number } | 'incomplete' {
  const fragments: Buffer[] = [];
  let collected = 0;
  let needed = Number.POSITIVE_INFINITY;
  let offset = 0;
  while (collected < needed) {
    // Judge the first bytes as soon as they arrive: plain HTTP on port 443 fails without a wait.
    const type = input[offset];
    const major = input[offset + 1];
    if (type !== undefined && type !== CONTENT_HANDSHAKE) throw new Malformed(`record type ${type} where a handshake record was expected`);
    if (major !== undefined && major !== 3) throw new Malformed('not a TLS record (legacy_record_version)');
    if (input.length - offset < RECORD_HEADER) return 'incomplete';
    const fragmentLength = input.readUInt16BE(offset + 3);
    // RFC 8446 5.1: zero-length handshake fragments are forbidden; oversized ones too.
    if (fragmentLength === 0 || fragmentLength > MAX_RECORD_FRAGMENT) throw new Malformed(`record length ${fragmentLength}`);
    if (input.length - offset - RECORD_HEADER < fragmentLength) return 'incomplete';
    fragments.push(input.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + fragmentLength));
    collected += fragmentLength;
    offset += RECORD_HEADER + fragmentLength;
    if (needed === Number.POSITIVE_INFINITY && collected >= 4) {
      const head = Buffer.concat(fragments).subarray(0, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) throw new Malformed(`handshake type ${String(head[0])} is not ClientHello`);
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) throw new Malformed(`ClientHello of ${needed} bytes exceeds ${MAX_CLIENT_HELLO_BYTES}`);
    }
  }
  // Nothing may follow a ClientHello before the server answers, so leftovers mean a bad framing.
  if (collected !== needed) throw new Malformed('bytes after the ClientHello in its last record');
  return { handshake: Buffer.concat(fragments), length: offset };
}

function serverName(extension: Reader): string {
  const list = extension.vector(2, 1, 0xffff, 'server_name_list');
  extension.done('server_name extension');
  let name: string | null = null;
  while (list.remaining > 0) {
    const type = list.u8('name_type');
    const value = list.vector(2, 1, 0xffff, 'host_name');
    if (type !== HOST_NAME_TYPE) continue;
    // RFC 6066 3: at most one name per type; two names would let the agent pick which one we check.
    if (name !== null) throw new Malformed('more than one host_name');
    name = value.text();
  }
  if (name === null) throw new Malformed('server_name extension without a host_name');
  const lower = name.toLowerCase();
  // RFC 6066 3: ASCII, no trailing dot, no IP literal.
  if (isIP(lower) !== 0) throw new Malformed('host_name is an IP literal');
  if (!DNS_NAME.test(lower)) throw new Malformed('host_name is not a DNS name');
  return lower;
}

function protocols(extension: Reader): string[] {
  const list = extension.vector(2, 2, 0xffff, 'protocol_name_list');
  extension.done('application_layer_protocol_negotiation extension');
  const names: string[] = [];
  while (list.remaining > 0) names.push(list.vector(1, 1, 0xff, 'protocol_name').text());
  return names;
}

function clientHello(body: Reader, length: number): ClientHello {
  body.skip(2, 'legacy_version');
  body.skip(32, 'random');
  body.vector(1, 0, 32, 'legacy_session_id');
  const suites = body.vector(2, 2, 0xfffe, 'cipher_suites');
  if (suites.remaining % 2 !== 0) throw new Malformed('odd cipher_suites length');
  body.vector(1, 1, 0xff, 'legacy_compression_methods');
  let sni: string | null = null;
  let ech = false;
  let alpn: string[] = [];
  // A TLS 1.2 ClientHello may end here with no extensions at all (RFC 5246 7.4.1.2).
  if (body.remaining > 0) {
    const extensions = body.vector(2, 0, 0xffff, 'extensions');
    const seen = new Set<number>();
    while (extensions.remaining > 0) {
      const type = extensions.u16('extension_type');
      const data = extensions.vector(2, 0, 0xffff, 'extension_data');
      // RFC 8446 4.2: duplicates are illegal, and would let two parsers disagree on the name.
      if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
      seen.add(type);
      if (type === EXT_SERVER_NAME) sni = serverName(data);
      else if (type === EXT_ALPN) alpn = protocols(data);
      else if (type === EXT_ENCRYPTED_CLIENT_HELLO) ech = true;
    }
  }
  body.done('ClientHello');
  return { kind: 'hello', sni, ech, alpn, length };
}

/**
 * Parses the ClientHello at the start of `input`, which may hold it split across TCP segments
 * and records. Never throws: the answer is a hello, `incomplete` (peek more) or `invalid`.
 */
export function parseClientHello(input: Buffer): ClientHelloParse {
  try {
    const assembled = reassemble(input);
    if (assembled === 'incomplete') return { kind: 'incomplete' };
    const { handshake, length } = assembled;
    return clientHello(new Reader(handshake, 4, handshake.length), length);
  } catch (error) {
    return { kind: 'invalid', reason: error instanceof Malformed ? error.message : 'unparseable ClientHello' };
  }
}
