// Screens a queried name before policy sees it: names shaped for DNS tunnelling (long labels,
// long names, binary bytes) are refused whatever the rules say.

export interface NameLimits {
  readonly maxLabelLength: number;
  readonly maxNameLength: number;
}

// Letters, digits, hyphen (RFC 1123 2.1) and underscore (SRV/DKIM-style service labels).
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;

/** Lower-cases and drops the root dot, so `Example.COM.` and `example.com` are one name. */
export function normaliseQueryName(raw: string): string {
  const lower = raw.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Why the name is refused, or null when it may go on to policy. */
export function screenName(name: string, limits: NameLimits): string | null {
  if (name === '') return 'query for the root';
  if (name.length > limits.maxNameLength) return `name longer than ${limits.maxNameLength} characters`;
  for (const label of name.split('.')) {
    // Tunnels pack data into long labels; real host names rarely need more than a few dozen bytes.
    if (label.length > limits.maxLabelLength) return `label longer than ${limits.maxLabelLength} characters`;
    if (!LABEL.test(label)) return 'label with characters other than letters, digits, hyphen and underscore';
  }
  return null;
}
