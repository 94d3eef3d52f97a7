// Keep-alive connection pools for forwarded HTTP, one undici Pool per (origin, vetted address
// set): a pooled socket is only ever reused for the addresses it was vetted for.
import { Pool } from 'undici';
import { connectorFor, type VettedDestination } from '../connect/index.js';

interface PoolEntry {
  readonly pool: Pool;
  lastUsed: number;
}

export interface UpstreamPoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** idle pools are closed after this long; their sockets would have expired anyway */
  readonly evictAfterMs: number;
}

export class UpstreamPools {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.sweeper = setInterval(() => this.evictIdle(), Math.max(1000, options.evictAfterMs / 2));
    this.sweeper.unref();
  }

  get(vetted: VettedDestination, scheme: 'http' | 'https'): Pool {
    const { destination, addresses } = vetted;
    const key = `${scheme}|${destination.host}|${destination.port}|${addresses.map((entry) => entry.address).join(',')}`;
    let entry = this.pools.get(key);
    if (entry === undefined) {
      const hostPart = destination.kind === 'ipv6' ? `[${destination.host}]` : destination.host;
      const connect = connectorFor(vetted, {
        timeoutMs: this.options.connectTimeoutMs,
        ...(scheme === 'https' ? { tls: {} } : {}),
      });
      const pool = new Pool(`${scheme}://${hostPart}:${destination.port}`, {
        connect,
        keepAliveTimeout: Math.min(this.options.idleTimeoutMs, 30_000),
        headersTimeout: this.options.idleTimeoutMs,
        bodyTimeout: this.options.idleTimeoutMs,
      });
      entry = { pool, lastUsed: Date.now() };
      this.pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    return entry.pool;
  }

  private evictIdle(): void {
    const cutoff = Date.now() - this.options.evictAfterMs;
    for (const [key, entry] of this.pools) {
      if (entry.lastUsed < cutoff) {
        this.pools.delete(key);
        void entry.pool.close();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    const closing = [...this.pools.values()].map((entry) => entry.pool.destroy());
    this.pools.clear();
    await Promise.allSettled(closing);
  }
}
