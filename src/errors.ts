// The one catalogue of Sluice's failures: a stable code, the HTTP status an agent sees, which side
// failed, and a message; and the codes of the failures only an operator sees (OperatorError).

export type FailingSide = 'downstream' | 'policy' | 'upstream' | 'internal';

interface CatalogueEntry {
  readonly status: number;
  readonly side: FailingSide;
  readonly message: string;
}

export const ERROR_CATALOGUE = {
  // downstream: the agent sent something a strict intermediary must refuse (RFC 9112)
  BAD_REQUEST: { status: 400, side: 'downstream', message: 'malformed request' },
  BAD_FRAMING: { status: 400, side: 'downstream', message: 'ambiguous or invalid message framing' },
  BAD_HTTP_VERSION: { status: 505, side: 'downstream', message: 'only HTTP/1.0 and HTTP/1.1 are accepted' },
  BAD_TARGET: { status: 400, side: 'downstream', message: 'invalid request target' },
  BAD_HOST: { status: 400, side: 'downstream', message: 'invalid destination host' },
  BAD_PORT: { status: 400, side: 'downstream', message: 'destination port outside 1..65535' },
  DUPLICATE_HOST: { status: 400, side: 'downstream', message: 'more than one Host header' },
  ORIGIN_FORM: { status: 400, side: 'downstream', message: 'origin-form request sent to the proxy listener' },
  HEADERS_TOO_LARGE: { status: 431, side: 'downstream', message: 'request headers too large' },
  HEADER_TIMEOUT: { status: 408, side: 'downstream', message: 'request headers not received in time' },
  TOO_MANY_CONNECTIONS: { status: 503, side: 'downstream', message: 'connection limit reached' },
  AUTH_INVALID: { status: 407, side: 'downstream', message: 'proxy credentials not recognised' },
  // intercepted inference calls (docs/inference.md)
  MISDIRECTED_REQUEST: { status: 421, side: 'downstream', message: 'the Host header names another host than the intercepted TLS session' },
  INFERENCE_BODY_TOO_LARGE: { status: 413, side: 'downstream', message: 'inference request body larger than inference.max_body_bytes' },
  INFERENCE_BODY_INVALID: { status: 400, side: 'downstream', message: 'inference request body is not the JSON its API expects' },
  // transparent TLS (RFC 8446 4.1.2) and DNS: what the agent sent cannot be judged safely
  CLIENT_HELLO_INVALID: { status: 400, side: 'downstream', message: 'TLS ClientHello did not parse' },
  SNI_MISSING: { status: 400, side: 'downstream', message: 'TLS ClientHello names no server' },
  // policy: the request was understood and refused
  ANONYMOUS_DENIED: { status: 403, side: 'policy', message: 'unidentified agents are not allowed' },
  IDENTITY_UNAVAILABLE: { status: 403, side: 'policy', message: 'the owner of the local client socket could not be established; refused rather than guessed' },
  RULE_DENY: { status: 403, side: 'policy', message: 'denied by rule' },
  NO_MATCHING_RULE: { status: 403, side: 'policy', message: 'no rule allows this destination (strict mode)' },
  DESTINATION_FORBIDDEN: { status: 403, side: 'policy', message: 'destination address is in a forbidden range' },
  BLOCKLISTED: { status: 403, side: 'policy', message: 'destination is on a malicious-domain blocklist' },
  ECH_REFUSED: { status: 403, side: 'policy', message: 'encrypted ClientHello hides the destination' },
  SNI_MISMATCH: { status: 403, side: 'policy', message: 'TLS server name differs from the requested host' },
  APPROVAL_ENDED: { status: 403, side: 'policy', message: 'the approval that allowed this connection was revoked or expired' },
  // policy, per agent (agents[].limits, on_unknown: hold): refused for now, may succeed later
  AGENT_RATE_LIMITED: { status: 429, side: 'policy', message: "the agent is over its request rate (agents[].limits); retry after the Retry-After seconds" },
  AGENT_CONNECTION_LIMIT: { status: 429, side: 'policy', message: 'the agent has as many requests in progress as agents[].limits.max_concurrent allows' },
  HOLD_TIMEOUT: { status: 403, side: 'policy', message: 'no rule or approval allowed this destination while the request was held' },
  HOLD_CAPACITY: { status: 403, side: 'policy', message: 'no rule allows this destination and too many requests are already held (approvals.max_held, max_held_per_agent)' },
  BUDGET_EXCEEDED: { status: 429, side: 'policy', message: "the agent's inference token budget is spent" },
  REALTIME_REFUSED: { status: 403, side: 'policy', message: 'Realtime (WebSocket) inference cannot be metered; refused for agents with a token budget' },
  // upstream: the destination could not be reached
  DNS_FAILURE: { status: 502, side: 'upstream', message: 'destination name did not resolve' },
  UPSTREAM_REFUSED: { status: 502, side: 'upstream', message: 'destination refused the connection' },
  UPSTREAM_RESET: { status: 502, side: 'upstream', message: 'destination reset the connection' },
  UPSTREAM_UNREACHABLE: { status: 502, side: 'upstream', message: 'destination unreachable' },
  UPSTREAM_TIMEOUT: { status: 504, side: 'upstream', message: 'destination did not answer in time' },
  UPSTREAM_PROTOCOL: { status: 502, side: 'upstream', message: 'destination sent an invalid response' },
  UPSTREAM_TLS: { status: 502, side: 'upstream', message: 'destination TLS handshake or certificate failed' },
  // upstream through a parent proxy (connect.upstream_proxy): the parent answered, but not with a connection
  PARENT_PROXY_AUTH: { status: 502, side: 'upstream', message: "the parent proxy refused Sluice's credentials" },
  PARENT_PROXY_REFUSED: { status: 502, side: 'upstream', message: 'the parent proxy would not connect to the destination' },
  // policy source: a signed allowlist bundle was refused and the last good policy stays in force
  NO_VALID_BUNDLE: { status: 403, side: 'policy', message: 'no valid allowlist bundle is in force; failing closed' },
  BUNDLE_REJECTED: { status: 503, side: 'policy', message: 'allowlist bundle rejected' },
  BUNDLE_STATE_UNREADABLE: { status: 503, side: 'internal', message: 'allowlist bundle state is unreadable; failing closed' },
  // the admin API (listen.admin /v1): the caller, not an agent, sent something refused
  ADMIN_UNAUTHORIZED: { status: 401, side: 'downstream', message: 'admin API token missing or not recognised' },
  ADMIN_FORBIDDEN: { status: 403, side: 'downstream', message: "the token's role does not allow this call" },
  ADMIN_NOT_FOUND: { status: 404, side: 'downstream', message: 'no such admin route or object' },
  ADMIN_METHOD_NOT_ALLOWED: { status: 405, side: 'downstream', message: 'method not allowed on this admin route' },
  ADMIN_BAD_REQUEST: { status: 400, side: 'downstream', message: 'invalid admin API request' },
  ADMIN_CONFLICT: { status: 409, side: 'downstream', message: 'conflicts with the current state' },
  ADMIN_RATE_LIMITED: { status: 429, side: 'downstream', message: 'too many failed admin logins from this address' },
  // internal
  BUDGET_STORE_UNUSABLE: { status: 503, side: 'internal', message: 'the inference budget store is unreadable; inference refused until an operator acts' },
  BUDGET_STORE_UNREACHABLE: { status: 503, side: 'internal', message: 'the shared budget store (Redis) cannot be reached; inference refused until it is back' },
  SHARED_STATE_UNREACHABLE: { status: 503, side: 'internal', message: 'the shared state store (Redis) cannot be reached; the change was not made' },
  AUDIT_UNAVAILABLE: { status: 503, side: 'internal', message: 'audit log unavailable; failing closed' },
  AUDIT_RECORD_INVALID: { status: 500, side: 'internal', message: 'audit record is not plain JSON' },
  INTERNAL: { status: 500, side: 'internal', message: 'internal error' },
  GUARD_APPLY_FAILED: { status: 500, side: 'internal', message: 'nftables guard could not be loaded' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly side: FailingSide;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const entry = ERROR_CATALOGUE[code];
    super(detail === undefined ? entry.message : `${entry.message}: ${detail}`, options);
    this.name = 'SluiceError';
    this.code = code;
    this.status = entry.status;
    this.side = entry.side;
  }
}

export function isSluiceError(value: unknown): value is SluiceError {
  return value instanceof SluiceError;
}

/**
 * Failures reported to the operator only (by `sluice run` and `sluice check`, in log lines and
 * /status), never to an agent; docs/errors.md's second table lists each. Not HTTP errors, so they
 * have no status or side.
 */
export const OPERATOR_ERROR_CODES = [
  'CONFIG_INVALID',
  'RULE_PATTERN_INVALID',
  'BUNDLE_FETCH_FAILED',
  'BLOCKLIST_ENTRY_CAP',
  'BLOCKLIST_NETWORK',
  'BLOCKLIST_TIMEOUT',
  'BLOCKLIST_HTTP_STATUS',
  'BLOCKLIST_TOO_LARGE',
  'BLOCKLIST_COMPILE',
  'AUDIT_KEY_INVALID',
  'AUDIT_STREAM_DELIVERY',
  'AUDIT_STREAM_SOURCE',
  'AUDIT_STREAM_CURSOR',
] as const;

export type OperatorErrorCode = (typeof OPERATOR_ERROR_CODES)[number];

/** The one family of operator errors: a stable code and a message naming the file, field or URL at fault. */
export class OperatorError extends Error {
  readonly code: OperatorErrorCode;

  constructor(code: OperatorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OperatorError';
    this.code = code;
  }
}

/** An operator error, of the given code when one is named. */
export function isOperatorError(value: unknown, code?: OperatorErrorCode): value is OperatorError {
  return value instanceof OperatorError && (code === undefined || value.code === code);
}

export function isOperatorErrorCode(code: string): code is OperatorErrorCode {
  return (OPERATOR_ERROR_CODES as readonly string[]).includes(code);
}
