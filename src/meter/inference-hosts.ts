// Which hosts are inference APIs (inference.hosts): exact names and `*.domain` for subdomains,
// matched by a set lookup per label suffix, so the per-request check compiles nothing.

export class InferenceHosts {
  private readonly exact = new Set<string>();
  private readonly suffixes = new Set<string>();

  constructor(patterns: readonly string[]) {
    for (const pattern of patterns) {
      if (pattern.startsWith('*.')) this.suffixes.add(pattern.slice(2));
      else this.exact.add(pattern);
    }
  }

  /** `host` is a normalised destination host (lower case, no trailing dot). */
  has(host: string): boolean {
    if (this.exact.has(host)) return true;
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      if (this.suffixes.has(host.slice(dot + 1))) return true;
    }
    return false;
  }
}
