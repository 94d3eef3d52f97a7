// Access requests: what Strict-mode agents were refused because no rule decided, one per agent,
// host and port, kept crash-safe in the state directory until a human allows or denies them.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Agent, IdentitySource } from '../agent.js';
import { accessRequestEntry, type AccessRequestEntry, type AuditLog } from '../audit/kinds.js';
import { destinationOf } from '../destination.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { decide, type Policy } from './decide.js';

/** The store's file name inside the state directory. */
export const ACCESS_REQUESTS_FILE = 'access-requests.json';

export type AccessRequestStatus = 'pending' | 'denied';

export interface AccessRequest {
  readonly id: string;
  /** the agent as identified when it was refused: enough to decide for it again */
  readonly agent: string;
  readonly groups: readonly string[];
  readonly via: IdentitySource;
  readonly host: string;
  readonly port: number;
  readonly firstSeen: Date;
  readonly lastSeen: Date;
  readonly count: number;
  readonly status: AccessRequestStatus;
  /** who denied it (the admin token's name), when denied */
  readonly deniedBy: string | null;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface AccessRequestsOptions {
  readonly audit: AuditLog;
  /** pending or denied requests kept per agent; past it a new destination is only counted */
  readonly maxPerAgent: number;
  /** a request not seen again for this long is dropped */
  readonly ttlMs: number;
  readonly metrics?: Pick<Metrics, 'accessRequests'>;
  readonly log?: Logger;
  /** repeats only change counts: their writes are gathered for this long */
  readonly flushMs?: number;
  readonly now?: () => number;
}

const FORMAT_VERSION = 1;
const SOURCES: ReadonlySet<string> = new Set<IdentitySource>(['token', 'uid', 'cidr', 'anonymous']);

function keyOf(agent: string, host: string, port: number): string {
  return `${agent}\u0000${host}\u0000${port}`;
}

function parseRequests(text: string): Mutable<AccessRequest>[] {
  const root = JSON.parse(text) as { version?: unknown; requests?: unknown } | null;
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.requests)) {
    throw new Error(`expected {"version": ${FORMAT_VERSION}, "requests": [...]}`);
  }
  return root.requests.map((raw: unknown, index) => {
    const item = (raw ?? {}) as Record<string, unknown>;
    const { id, agent, groups, via, host, port, count, status, denied_by: deniedBy } = item;
    const firstSeen = new Date(String(item['first_seen']));
    const lastSeen = new Date(String(item['last_seen']));
    const valid =
      typeof id === 'string' &&
      typeof agent === 'string' &&
      Array.isArray(groups) &&
      groups.every((group) => typeof group === 'string') &&
      typeof via === 'string' &&
      SOURCES.has(via) &&
      typeof host === 'string' &&
      Number.isInteger(port) &&
      Number.isInteger(count) &&
      (status === 'pending' || status === 'denied') &&
      (deniedBy === null || typeof deniedBy === 'string') &&
      !Number.isNaN(firstSeen.getTime()) &&
      !Number.isNaN(lastSeen.getTime());
    if (!valid) throw new Error(`request ${index} is malformed`);
    return { id, agent, groups: groups as string[], via: via as IdentitySource, host, port: port as number, count: count as number, status, deniedBy, firstSeen, lastSeen };
  });
}

export class AccessRequests {
  readonly #byKey = new Map<string, Mutable<AccessRequest>>();
  readonly #byId = new Map<string, Mutable<AccessRequest>>();
  readonly #perAgent = new Map<string, number>();
  readonly #created = new Set<(request: AccessRequest) => void>();
  readonly #denied = new Set<(request: AccessRequest) => void>();
  /** new destinations refused because their agent had maxPerAgent requests already */
  dropped = 0;
  /** set when the file on disk could not be read at open; it was kept aside, never wiped */
  readonly corrupt: { readonly movedTo: string; readonly reason: string } | null;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;
  #closed = false;

  private constructor(
    private readonly file: string,
    private readonly options: AccessRequestsOptions,
    requests: readonly Mutable<AccessRequest>[],
    corrupt: AccessRequests['corrupt'],
  ) {
    for (const request of requests) this.#add(request);
    this.corrupt = corrupt;
  }

  static async open(file: string, options: AccessRequestsOptions): Promise<AccessRequests> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new AccessRequests(file, options, [], null);
      throw error;
    }
    try {
      return new AccessRequests(file, options, parseRequests(text), null);
    } catch (error) {
      const movedTo = `${file}.corrupt-${Date.now()}`;
      await rename(file, movedTo);
      return new AccessRequests(file, options, [], { movedTo, reason: error instanceof Error ? error.message : String(error) });
    }
  }

  /**
   * A Strict-mode denial no rule decided: creates the agent's request for host:port (audited and
   * announced once) or counts a repeat. Null when the agent already has its maximum of requests.
   */
  record(agent: Agent, host: string, port: number): AccessRequest | null {
    if (this.#closed) return null;
    const at = new Date(this.#now());
    const existing = this.#byKey.get(keyOf(agent.name, host, port));
    if (existing !== undefined) {
      existing.count += 1;
      existing.lastSeen = at;
      this.#schedule();
      return existing;
    }
    if ((this.#perAgent.get(agent.name) ?? 0) >= this.options.maxPerAgent) {
      this.dropped += 1;
      this.options.metrics?.accessRequests.inc({ event: 'dropped' });
      return null;
    }
    const request: Mutable<AccessRequest> = {
      id: `req_${randomBytes(8).toString('hex')}`,
      agent: agent.name,
      groups: [...agent.groups],
      via: agent.via,
      host,
      port,
      firstSeen: at,
      lastSeen: at,
      count: 1,
      status: 'pending',
      deniedBy: null,
    };
    this.#add(request);
    this.#event('created', request);
    // A new request is written at once; only repeats wait for the debounce.
    this.#dirty = true;
    void this.flush();
    for (const listener of this.#created) listener(request);
    return request;
  }

  /** Records a request if `policy` would refuse `agent` this destination for want of a rule (the DNS server's refusals). */
  recordIfUnknown(policy: Policy, agent: Agent, host: string, port: number): void {
    if (decide(policy, { agent, destination: destinationOf(host, port), now: this.#now() }).reason === 'no_matching_rule') this.record(agent, host, port);
  }

  /** Requests, newest activity first; expired ones are dropped first. */
  list(filter: { readonly agent?: string; readonly status?: AccessRequestStatus } = {}): AccessRequest[] {
    this.expire();
    return [...this.#byKey.values()]
      .filter((request) => (filter.agent === undefined || request.agent === filter.agent) && (filter.status === undefined || request.status === filter.status))
      .sort((a, b) => b.lastSeen.getTime() - a.lastSeen.getTime())
      .map((request) => ({ ...request }));
  }

  get(id: string): AccessRequest | undefined {
    const found = this.#byId.get(id);
    return found === undefined ? undefined : { ...found };
  }

  /** A human said no: the request stays (so repeats are not announced again) as denied, and held requests for it end. */
  deny(id: string, by: string): AccessRequest | undefined {
    const request = this.#byId.get(id);
    if (request === undefined) return undefined;
    if (request.status !== 'denied') {
      request.status = 'denied';
      request.deniedBy = by;
      this.#event('denied', request, by);
      this.#schedule();
      for (const listener of this.#denied) listener(request);
    }
    return { ...request };
  }

  /** The hook for a policy change or a new approval: every pending request `policy` now allows is cleared. */
  clearAllowed(policy: Policy): AccessRequest[] {
    const cleared: AccessRequest[] = [];
    for (const request of this.#byKey.values()) {
      if (request.status !== 'pending') continue;
      const agent: Agent = { name: request.agent, groups: request.groups, via: request.via, mode: 'strict' };
      if (decide(policy, { agent, destination: destinationOf(request.host, request.port), now: this.#now() }).verdict !== 'allow') continue;
      this.#remove(request);
      this.#event('cleared', request);
      cleared.push({ ...request });
    }
    if (cleared.length > 0) this.#schedule();
    return cleared;
  }

  /** Drops requests not seen for the TTL. */
  expire(): void {
    const cutoff = this.#now() - this.options.ttlMs;
    let changed = false;
    for (const request of this.#byKey.values()) {
      if (request.lastSeen.getTime() >= cutoff) continue;
      this.#remove(request);
      this.#event('expired', request);
      changed = true;
    }
    if (changed) this.#schedule();
  }

  /** Called with each new request (the webhook); returns the unsubscribe. */
  onCreated(listener: (request: AccessRequest) => void): () => void {
    this.#created.add(listener);
    return () => this.#created.delete(listener);
  }

  /** Called when a human denies a request (held connections for it end). */
  onDenied(listener: (request: AccessRequest) => void): () => void {
    this.#denied.add(listener);
    return () => this.#denied.delete(listener);
  }

  /** Writes pending changes now; writes never overlap. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#writeIfDirty());
    return this.#writing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  #now(): number {
    return (this.options.now ?? Date.now)();
  }

  #add(request: Mutable<AccessRequest>): void {
    this.#byKey.set(keyOf(request.agent, request.host, request.port), request);
    this.#byId.set(request.id, request);
    this.#perAgent.set(request.agent, (this.#perAgent.get(request.agent) ?? 0) + 1);
  }

  #remove(request: AccessRequest): void {
    this.#byKey.delete(keyOf(request.agent, request.host, request.port));
    this.#byId.delete(request.id);
    this.#perAgent.set(request.agent, (this.#perAgent.get(request.agent) ?? 1) - 1);
  }

  #event(event: AccessRequestEntry['event'], request: AccessRequest, by: string | null = null): void {
    this.options.metrics?.accessRequests.inc({ event });
    this.options.audit.append(accessRequestEntry(event, request, by)).catch((error: unknown) => this.options.log?.error({ err: error, event, request: request.id }, 'access request could not be audited'));
  }

  #schedule(): void {
    this.#dirty = true;
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.options.flushMs ?? 1000);
    this.#timer.unref();
  }

  /** write, fsync, rename, fsync the directory: a crash leaves the old file or the new one, never half. */
  async #writeIfDirty(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    const body = JSON.stringify({
      version: FORMAT_VERSION,
      requests: [...this.#byKey.values()].map((request) => ({
        id: request.id,
        agent: request.agent,
        groups: request.groups,
        via: request.via,
        host: request.host,
        port: request.port,
        first_seen: request.firstSeen.toISOString(),
        last_seen: request.lastSeen.toISOString(),
        count: request.count,
        status: request.status,
        denied_by: request.deniedBy,
      })),
    });
    const directory = dirname(this.file);
    const temporary = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await mkdir(directory, { recursive: true, mode: 0o700 });
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(`${body}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.file);
      const dir = await open(directory, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      this.#dirty = true;
      this.options.log?.error({ err: error, file: this.file }, 'access requests could not be saved; kept in memory for the next write');
    }
  }
}
