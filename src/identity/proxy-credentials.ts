// Extracts the secret an agent presents in Proxy-Authorization (RFC 9110 §11.7.1): the Bearer
// token, or the password of Basic credentials (so `http://agent:TOKEN@proxy` URLs work).

export type PresentedCredential =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'malformed' };

export function readProxyCredential(header: string | undefined): PresentedCredential {
  if (header === undefined || header === '') return { kind: 'none' };
  const space = header.indexOf(' ');
  if (space < 0) return { kind: 'malformed' };
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (value === '') return { kind: 'malformed' };
  if (scheme === 'bearer') return { kind: 'token', token: value };
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0 || colon === decoded.length - 1) return { kind: 'malformed' };
    return { kind: 'token', token: decoded.slice(colon + 1) };
  }
  return { kind: 'malformed' };
}
