// Parses the host and path patterns a rule file may hold into matchable form, refusing any
// pattern that would silently cover more than its author meant (public suffixes, loose regexes).
import RE2 from 're2';
import { parse as parseDomain } from 'tldts';
import { normaliseHost } from '../destination.js';
import { isSluiceError, OperatorError } from '../errors.js';

export type HostPattern =
  | { readonly kind: 'exact'; readonly host: string; readonly isName: boolean }
  /** `*.base`: strict subdomains of base, never base itself */
  | { readonly kind: 'subdomains'; readonly base: string }
  | { readonly kind: 'regex'; readonly source: string; readonly regex: RE2 };

export type PathPattern =
  | { readonly kind: 'prefix'; readonly prefix: string; readonly lowerPrefix: string }
  | { readonly kind: 'regex'; readonly source: string; readonly regex: RE2 };

const REGEX_PREFIX = 're2:';

function normaliseName(text: string): { host: string; isName: boolean } {
  try {
    const { host, kind } = normaliseHost(text);
    return { host, isName: kind === 'name' };
  } catch (error) {
    if (isSluiceError(error)) throw new OperatorError('RULE_PATTERN_INVALID', error.message);
    throw error;
  }
}

function compile(source: string, flags = ''): RE2 {
  try {
    return new RE2(source, flags);
  } catch (error) {
    throw new OperatorError('RULE_PATTERN_INVALID', `invalid re2 pattern ${JSON.stringify(source)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * True when `name` is listed on the Public Suffix List, ICANN or private section (`com`,
 * `co.uk`, `github.io`). Names that only match the list's implicit `*` rule (`internal`,
 * `corp`) are not, so private zones stay usable.
 */
export function isPublicSuffix(name: string): boolean {
  const parsed = parseDomain(name, { allowPrivateDomains: true, detectIp: true });
  return parsed.publicSuffix === name && (parsed.isIcann === true || parsed.isPrivate === true);
}

/**
 * A subdomain pattern whose base is a public suffix would let an agent reach any domain anyone
 * can register under it (`*.github.io` covers every user's site), which is never what a rule
 * author means by "this service".
 */
export function checkSubdomainBase(base: string, spelling: string): void {
  if (isPublicSuffix(base)) {
    throw new OperatorError('RULE_PATTERN_INVALID', `${spelling} covers every domain under the public suffix "${base}"; name the registrable domain instead`);
  }
}

export function parseHostPattern(text: string): HostPattern {
  if (text.startsWith(REGEX_PREFIX)) {
    const source = text.slice(REGEX_PREFIX.length);
    // An unanchored host pattern also matches look-alikes such as `api.example.com.attacker.net`.
    if (!source.startsWith('^') || !source.endsWith('$')) {
      throw new OperatorError('RULE_PATTERN_INVALID', `re2 host pattern ${JSON.stringify(source)} must be anchored with ^ and $`);
    }
    // Hosts arrive lower-cased, so `^Tracker\.Example\.com$` would never match. Matching without
    // regard to case fixes that without rewriting the text, which would turn \D into \d, \W into \w.
    return { kind: 'regex', source, regex: compile(source, 'i') };
  }
  if (text.startsWith('*.')) {
    const rest = text.slice(2);
    if (rest.includes('*')) throw new OperatorError('RULE_PATTERN_INVALID', `"*" is only allowed as one leading "*." label in ${JSON.stringify(text)}`);
    const { host, isName } = normaliseName(rest);
    if (!isName) throw new OperatorError('RULE_PATTERN_INVALID', `wildcard ${JSON.stringify(text)} has an IP address as its base; wildcards apply to names`);
    checkSubdomainBase(host, `wildcard ${JSON.stringify(text)}`);
    return { kind: 'subdomains', base: host };
  }
  if (text.includes('*')) throw new OperatorError('RULE_PATTERN_INVALID', `"*" is only allowed as one leading "*." label in ${JSON.stringify(text)}`);
  const { host, isName } = normaliseName(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
  return { kind: 'exact', host, isName };
}

export function parsePathPattern(text: string): PathPattern {
  if (text.startsWith(REGEX_PREFIX)) {
    const source = text.slice(REGEX_PREFIX.length);
    return { kind: 'regex', source, regex: compile(source) };
  }
  if (!text.startsWith('/')) throw new OperatorError('RULE_PATTERN_INVALID', `path ${JSON.stringify(text)} must start with "/" or "re2:"`);
  return { kind: 'prefix', prefix: text, lowerPrefix: text.toLowerCase() };
}
