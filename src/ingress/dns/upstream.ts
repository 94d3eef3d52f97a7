// Asks the configured upstream resolvers for A or AAAA records with their TTLs (c-ares does the
// retries and the TCP fallback), and sorts failures into the answer the agent should get.
import { promises as dns } from 'node:dns';

export type UpstreamAnswer =
  | { readonly kind: 'records'; readonly records: readonly { readonly address: string; readonly ttl: number }[] }
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'failed'; readonly reason: string };

export interface UpstreamOptions {
  /** `host:port` or `[v6]:port`; empty uses the system's name servers */
  readonly servers: readonly string[];
  readonly timeoutMs: number;
}

export class UpstreamResolver {
  private readonly resolver: dns.Resolver;

  constructor(options: UpstreamOptions) {
    this.resolver = new dns.Resolver({ timeout: options.timeoutMs, tries: 2 });
    if (options.servers.length > 0) this.resolver.setServers([...options.servers]);
  }

  async query(name: string, type: 'A' | 'AAAA'): Promise<UpstreamAnswer> {
    try {
      const records = type === 'A' ? await this.resolver.resolve4(name, { ttl: true }) : await this.resolver.resolve6(name, { ttl: true });
      return { kind: 'records', records };
    } catch (error) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : 'ERROR';
      if (code === 'ENOTFOUND') return { kind: 'nxdomain' };
      if (code === 'ENODATA') return { kind: 'records', records: [] };
      return { kind: 'failed', reason: code };
    }
  }

  cancel(): void {
    this.resolver.cancel();
  }
}
