// The one table from socket, DNS, TLS and undici error codes to Sluice outcomes, so the tunnel,
// the forwarder and the dialer report the same failure the same way.
import { isSluiceError, SluiceError, type ErrorCode } from '../errors.js';

export const UPSTREAM_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  ECONNREFUSED: 'UPSTREAM_REFUSED',
  ECONNRESET: 'UPSTREAM_RESET',
  ECONNABORTED: 'UPSTREAM_RESET',
  EPIPE: 'UPSTREAM_RESET',
  ETIMEDOUT: 'UPSTREAM_TIMEOUT',
  EHOSTUNREACH: 'UPSTREAM_UNREACHABLE',
  ENETUNREACH: 'UPSTREAM_UNREACHABLE',
  EHOSTDOWN: 'UPSTREAM_UNREACHABLE',
  ENETDOWN: 'UPSTREAM_UNREACHABLE',
  EADDRNOTAVAIL: 'UPSTREAM_UNREACHABLE',
  EAFNOSUPPORT: 'UPSTREAM_UNREACHABLE',
  // a `prohibit` route or a firewall reject answers connect() with EACCES/EPERM
  EACCES: 'UPSTREAM_UNREACHABLE',
  EPERM: 'UPSTREAM_UNREACHABLE',
  ENOTFOUND: 'DNS_FAILURE',
  ENODATA: 'DNS_FAILURE',
  ESERVFAIL: 'DNS_FAILURE',
  EREFUSED: 'DNS_FAILURE',
  ETIMEOUT: 'DNS_FAILURE',
  EAI_AGAIN: 'DNS_FAILURE',
  // undici (errors.js): connect, header and body timers, and a socket that died mid-exchange
  UND_ERR_CONNECT_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'UPSTREAM_TIMEOUT',
  UND_ERR_SOCKET: 'UPSTREAM_RESET',
  UND_ERR_CLOSED: 'UPSTREAM_RESET',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'UPSTREAM_PROTOCOL',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'UPSTREAM_PROTOCOL',
  UND_ERR_INFO: 'UPSTREAM_PROTOCOL',
  // Node's TLS client: certificate chain and name checks (RFC 6125) and handshake failures
  ERR_TLS_CERT_ALTNAME_INVALID: 'UPSTREAM_TLS',
  ERR_SSL_WRONG_VERSION_NUMBER: 'UPSTREAM_TLS',
  CERT_HAS_EXPIRED: 'UPSTREAM_TLS',
  CERT_NOT_YET_VALID: 'UPSTREAM_TLS',
  CERT_REVOKED: 'UPSTREAM_TLS',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'UPSTREAM_TLS',
  SELF_SIGNED_CERT_IN_CHAIN: 'UPSTREAM_TLS',
  UNABLE_TO_GET_ISSUER_CERT: 'UPSTREAM_TLS',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'UPSTREAM_TLS',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'UPSTREAM_TLS',
  HOSTNAME_MISMATCH: 'UPSTREAM_TLS',
};

const ERRNO_NAME = /^E[A-Z0-9]+$/;

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

function causeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'cause' in error ? error.cause : undefined;
}

/**
 * The Sluice code for any failure on the way to or from a destination. Follows `cause` chains
 * (undici wraps socket errors); unknown errnos count as unreachable, anything else as internal.
 */
export function errorCodeFor(error: unknown): ErrorCode {
  for (let current = error, depth = 0; current !== undefined && depth < 5; current = causeOf(current), depth++) {
    if (isSluiceError(current)) return current.code;
    const code = codeOf(current);
    if (code === undefined) continue;
    const mapped = UPSTREAM_ERROR_CODES[code];
    if (mapped !== undefined) return mapped;
    // llhttp parse errors: the destination's response is not valid HTTP/1.1
    if (code.startsWith('HPE_')) return 'UPSTREAM_PROTOCOL';
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'UPSTREAM_TLS';
    if (ERRNO_NAME.test(code)) return 'UPSTREAM_UNREACHABLE';
  }
  return 'INTERNAL';
}

/** The same failure as a SluiceError, keeping the original as `cause` for logs. */
export function upstreamErrorFrom(error: unknown, detail?: string): SluiceError {
  if (isSluiceError(error)) return error;
  return new SluiceError(errorCodeFor(error), detail, { cause: error });
}
