// Keep-alive connection pools for forwarded HTTP, one undici Pool per (origin, vetted address
// set): a pooled socket is only ever reused for the addresses it was vetted for. Plain HTTP
// through a parent proxy shares one pool per parent, each request sent in absolute-form.
import { Pool, type Dispatcher } from 'undici';
import { connectorFor } from './connector.js';
import { addressWithPort } from './dial.js';
import { absoluteFormVia } from './parent-forward.js';
import type { VettedDestination } from './resolve-and-vet.js';
import { formatAuthority } from '../destination.js';

interface PoolEntry {
  readonly pool: Pool;
  lastUsed: number;
  /** address:port of the newest connection the pool opened */
  upstream: string;
}

export interface PooledUpstream {
  readonly pool: Dispatcher;
  /** where the pool's newest connection goes, for the close record */
  upstream(): string;
}

export interface UpstreamPoolOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** idle pools are closed after this long; their sockets would have expired anyway */
  readonly evictAfterMs: number;
  /** told how long each new pooled connection took to establish (the TCP connect metric) */
  readonly onDialled?: (connectMs: number) => void;
  /** trust anchors for https upstreams: the system store plus connect.ca_file, never fewer */
  readonly ca?: readonly string[];
}

export class UpstreamPools {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: UpstreamPoolOptions) {
    this.sweeper = setInterval(() => this.evictIdle(), Math.max(1000, options.evictAfterMs / 2));
    this.sweeper.unref();
  }

  get(vetted: VettedDestination, scheme: 'http' | 'https'): PooledUpstream {
    const { destination, parent } = vetted;
    if (parent === undefined || scheme === 'https') return this.pooled(vetted, scheme);
    const toParent = this.pooled(parent.vetted, 'http');
    return { pool: toParent.pool.compose(absoluteFormVia(destination, parent.proxy)), upstream: toParent.upstream };
  }

  /** The pool for one vetted set; https through a parent tunnels with CONNECT (dial does that). */
  private pooled(vetted: VettedDestination, scheme: 'http' | 'https'): PooledUpstream {
    const { destination, addresses, parent } = vetted;
    const route = parent === undefined ? '' : `|via ${parent.proxy.label} ${parent.vetted.addresses.map((entry) => entry.address).join(',')}`;
    const key = `${scheme}|${destination.host}|${destination.port}|${addresses.map((entry) => entry.address).join(',')}${route}`;
    let entry = this.pools.get(key);
    if (entry === undefined) {
      const created: { entry?: PoolEntry } = {};
      const connect = connectorFor(vetted, {
        timeoutMs: this.options.connectTimeoutMs,
        onConnected: (address, port, connectMs) => {
          this.options.onDialled?.(connectMs);
          if (created.entry !== undefined) created.entry.upstream = addressWithPort(address, port);
        },
        ...(scheme === 'https' ? { tls: this.options.ca === undefined ? {} : { ca: [...this.options.ca] } } : {}),
      });
      const pool = new Pool(`${scheme}://${formatAuthority(destination)}`, {
        connect,
        keepAliveTimeout: Math.min(this.options.idleTimeoutMs, 30_000),
        headersTimeout: this.options.idleTimeoutMs,
        bodyTimeout: this.options.idleTimeoutMs,
      });
      entry = { pool, lastUsed: Date.now(), upstream: '' };
      created.entry = entry;
      this.pools.set(key, entry);
    }
    entry.lastUsed = Date.now();
    const chosen = entry;
    return { pool: chosen.pool, upstream: () => chosen.upstream };
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
