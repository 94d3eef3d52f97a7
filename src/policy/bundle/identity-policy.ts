// Which Fulcio certificate identities may sign an allowlist: the SAN (workflow URI or email) and
// the OIDC issuer, each pinned exactly or by an RE2 pattern compiled once at load.
import RE2 from 're2';
import { BundleRejection } from './rejection.js';

export type Matcher = { readonly exact: string } | { readonly pattern: string; readonly regexp: RE2 };

export interface IdentityPolicy {
  readonly identity: Matcher;
  readonly issuer: Matcher;
}

export interface IdentitySpec {
  readonly identity?: string | undefined;
  readonly identityRegexp?: string | undefined;
  readonly issuer?: string | undefined;
  readonly issuerRegexp?: string | undefined;
}

/** Undefined when nothing is pinned; a half-pinned identity is an error, never an open door. */
export function compileIdentityPolicy(spec: IdentitySpec): IdentityPolicy | undefined {
  const identity = matcher('certificate identity', spec.identity, spec.identityRegexp);
  const issuer = matcher('certificate OIDC issuer', spec.issuer, spec.issuerRegexp);
  if (identity === undefined && issuer === undefined) return undefined;
  if (identity === undefined || issuer === undefined) {
    throw new BundleRejection('untrusted_identity', 'keyless verification needs both a certificate identity and an OIDC issuer');
  }
  return { identity, issuer };
}

function matcher(what: string, exact: string | undefined, pattern: string | undefined): Matcher | undefined {
  if (exact !== undefined && pattern !== undefined) {
    throw new BundleRejection('malformed', `give the ${what} exactly or as a pattern, not both`);
  }
  if (exact !== undefined) return { exact };
  if (pattern === undefined) return undefined;
  try {
    return { pattern, regexp: new RE2(pattern, 'u') };
  } catch (error) {
    throw new BundleRejection('malformed', `${what} pattern ${JSON.stringify(pattern)} is not valid RE2: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** cosign's `-regexp` flags search (Go MatchString), so an unanchored pattern matches a substring. */
export function matches(matcher: Matcher, value: string | undefined): boolean {
  if (value === undefined) return false;
  return 'exact' in matcher ? matcher.exact === value : matcher.regexp.test(value);
}

export function describeMatcher(matcher: Matcher): string {
  return 'exact' in matcher ? JSON.stringify(matcher.exact) : `/${matcher.pattern}/`;
}
