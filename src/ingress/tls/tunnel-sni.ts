// The SNI check for explicit CONNECT tunnels: when the first bytes an agent sends through a
// tunnel are a ClientHello, its server name must be the host it asked to CONNECT to. Otherwise an
// allowed CONNECT host could front for any name the same server (a CDN) answers for.
import { SluiceError } from '../../errors.js';
import { parseClientHello } from './client-hello.js';

export type TunnelSniVerdict =
  /** not TLS, or TLS to the same name: relay the bytes */
  | { readonly kind: 'pass' }
  /** a ClientHello has started but is not complete yet: hold the bytes and read more */
  | { readonly kind: 'wait' }
  | { readonly kind: 'deny'; readonly error: SluiceError };

const TLS_HANDSHAKE_RECORD = 22;

/**
 * Judges the bytes buffered so far. `connectHost` is the normalised CONNECT host. Non-TLS
 * protocols pass untouched; a TLS hello without SNI passes only to an IP literal, the one case
 * where clients legitimately send none (RFC 6066 3).
 */
export function tunnelSniVerdict(bytes: Buffer, connectHost: string, connectHostIsName: boolean): TunnelSniVerdict {
  if (bytes.length === 0) return { kind: 'wait' };
  if (bytes[0] !== TLS_HANDSHAKE_RECORD) return { kind: 'pass' };
  const hello = parseClientHello(bytes);
  switch (hello.kind) {
    case 'incomplete':
      return { kind: 'wait' };
    case 'invalid':
      return { kind: 'deny', error: new SluiceError('CLIENT_HELLO_INVALID', hello.reason) };
    case 'hello':
      if (hello.ech) return { kind: 'deny', error: new SluiceError('ECH_REFUSED') };
      if (hello.sni === null) return connectHostIsName ? { kind: 'deny', error: new SluiceError('SNI_MISSING') } : { kind: 'pass' };
      if (hello.sni !== connectHost) return { kind: 'deny', error: new SluiceError('SNI_MISMATCH', `${hello.sni} inside CONNECT ${connectHost}`) };
      return { kind: 'pass' };
  }
}
