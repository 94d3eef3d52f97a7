// Normalises a blocklist entry the same way ingress normalises a destination, with a fast path
// for the plain ASCII names that make up nearly every feed line.
import { isSluiceError } from '../../errors.js';
import { normaliseHost, type HostKind } from '../../destination.js';

const PLAIN_NAME = /^[a-z0-9_.-]+$/;
// Names whose last label is numeric are IPv4 in some spelling; `xn--` labels need IDNA checks.
// Both go through normaliseHost so the result matches a Destination exactly.
const NEEDS_FULL_PARSE = /(^|\.)(0x[0-9a-f]*|[0-9]+)$|xn--/;

export interface NormalisedEntry {
  readonly host: string;
  readonly kind: HostKind;
}

function plainName(lower: string): string | null {
  const name = lower.endsWith('.') ? lower.slice(0, -1) : lower;
  if (name.length === 0 || name.length > 253 || !PLAIN_NAME.test(name) || NEEDS_FULL_PARSE.test(name)) return null;
  let labelStart = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i === name.length || name.charCodeAt(i) === 46) {
      const length = i - labelStart;
      if (length === 0 || length > 63) return null;
      labelStart = i + 1;
    }
  }
  return name;
}

/**
 * Returns the entry as a Destination would carry it, or a reason it is not a host. Plain ASCII
 * names skip the IDNA and IP parsers; everything else is handed to normaliseHost.
 */
export function normaliseEntry(raw: string): NormalisedEntry | string {
  const lower = raw.toLowerCase();
  const fast = plainName(lower);
  if (fast !== null) return { host: fast, kind: 'name' };
  try {
    return normaliseHost(raw);
  } catch (error) {
    if (isSluiceError(error)) return error.message;
    throw error;
  }
}
