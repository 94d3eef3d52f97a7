// Hop-by-hop header handling (RFC 9110 §7.6.1): headers that describe one connection are never
// forwarded, nor any header the Connection header names, nor Proxy-* credentials.

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function connectionTokens(value: string | undefined): Set<string> {
  const tokens = new Set<string>();
  if (value === undefined) return tokens;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') tokens.add(name);
  }
  return tokens;
}

/**
 * Request headers to send upstream as a flat [name, value, ...] list, original case and order,
 * with Host set to the target authority (RFC 9112 §3.2.2) and `drop` names removed too.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[], authority: string, drop: ReadonlySet<string>): string[] {
  let connection: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] ?? '').toLowerCase() === 'connection') connection = `${connection ?? ''},${rawHeaders[i + 1] ?? ''}`;
  }
  const named = connectionTokens(connection);
  const out: string[] = ['host', authority];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const lower = name.toLowerCase();
    if (lower === 'host' || ALWAYS_HOP_BY_HOP.has(lower) || named.has(lower) || drop.has(lower)) continue;
    out.push(name, rawHeaders[i + 1] ?? '');
  }
  return out;
}

/** Response headers from undici's lower-cased record, minus hop-by-hop ones, as a flat list. */
export function forwardResponseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const named = connectionTokens(typeof headers.connection === 'string' ? headers.connection : undefined);
  const out: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || ALWAYS_HOP_BY_HOP.has(name) || named.has(name)) continue;
    if (Array.isArray(value)) for (const item of value) out.push(name, item);
    else out.push(name, value);
  }
  return out;
}
