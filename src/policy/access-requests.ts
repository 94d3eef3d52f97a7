// Access requests: what Strict-mode agents were refused because no rule decided, one per agent,
// host and port, kept crash-safe in the state directory (or a fleet's Redis) until a human allows
// or denies them.
import { randomBytes } from 'node:crypto';
import type { Agent } from '../agent.js';
import { accessRequestEntry, type AccessRequestEntry, type AuditLog } from '../audit/kinds.js';
import { destinationOf } from '../destination.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { FileAccessRequests } from './access-request-file.js';
import { keyOf, type AccessRequest, type AccessRequestRecords, type Mutable, type RequestChanges } from './access-request-records.js';
import { decide, type Policy } from './decide.js';

export { ACCESS_REQUESTS_FILE } from './access-request-file.js';
export type { AccessRequest, AccessRequestStatus } from './access-request-records.js';

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
  /** where requests are kept; absent, the file given to open (this host alone) */
  readonly records?: AccessRequestRecords;
}

/** What changed since the last save, by keyOf(agent, host, port). */
interface Unsaved {
  readonly created: Map<string, Mutable<AccessRequest>>;
  readonly repeats: Map<string, { count: number; lastSeen: Date }>;
  readonly denied: Map<string, AccessRequest>;
  readonly removed: Map<string, AccessRequest>;
}

function nothingUnsaved(): Unsaved {
  return { created: new Map(), repeats: new Map(), denied: new Map(), removed: new Map() };
}

export class AccessRequests {
  readonly #byKey = new Map<string, Mutable<AccessRequest>>();
  readonly #byId = new Map<string, Mutable<AccessRequest>>();
  readonly #perAgent = new Map<string, number>();
  readonly #created = new Set<(request: AccessRequest) => void>();
  readonly #denied = new Set<(request: AccessRequest) => void>();
  #unsaved = nothingUnsaved();
  /** new destinations refused because their agent had maxPerAgent requests already */
  dropped = 0;
  /** set when the file on disk could not be read at open; it was kept aside, never wiped */
  readonly corrupt: { readonly movedTo: string; readonly reason: string } | null;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    private readonly records: AccessRequestRecords,
    private readonly options: AccessRequestsOptions,
    requests: readonly Mutable<AccessRequest>[],
    corrupt: AccessRequests['corrupt'],
  ) {
    for (const request of requests) this.#add(request);
    this.corrupt = corrupt;
  }

  static async open(file: string, options: AccessRequestsOptions): Promise<AccessRequests> {
    const records = options.records ?? new FileAccessRequests(file);
    const { requests, corrupt } = await records.load();
    const store = new AccessRequests(records, options, requests, corrupt);
    records.watch(() => {
      store.#writing = store.#writing.then(() => store.#resync());
    });
    return store;
  }

  /**
   * A Strict-mode denial no rule decided: creates the agent's request for host:port (audited and
   * announced once) or counts a repeat. Null when the agent already has its maximum of requests.
   */
  record(agent: Agent, host: string, port: number): AccessRequest | null {
    if (this.#closed) return null;
    const at = new Date(this.#now());
    const key = keyOf(agent.name, host, port);
    const existing = this.#byKey.get(key);
    if (existing !== undefined) {
      existing.count += 1;
      existing.lastSeen = at;
      // A request not saved yet is saved whole, count included.
      if (!this.#unsaved.created.has(key)) {
        const repeats = this.#unsaved.repeats.get(key);
        this.#unsaved.repeats.set(key, { count: (repeats?.count ?? 0) + 1, lastSeen: at });
      }
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
    // A new request is saved (and then announced) at once; only repeats wait for the debounce.
    this.#unsaved.created.set(key, request);
    void this.flush();
    return request;
  }

  /** Records a request if `policy` would refuse `agent` this destination for want of a rule (the DNS server's refusals). */
  recordIfUnknown(policy: Policy, agent: Agent, host: string, port: number): void {
    if (decide(policy, { agent, destination: destinationOf(host, port), now: this.#now() }).reason === 'no_matching_rule') this.record(agent, host, port);
  }

  /** Requests, newest activity first; expired ones are dropped first. */
  list(filter: { readonly agent?: string; readonly status?: AccessRequest['status'] } = {}): AccessRequest[] {
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
      this.#unsaved.denied.set(keyOf(request.agent, request.host, request.port), request);
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

  /** Called with each new request once it is saved and new to the store (the webhook); returns the unsubscribe. */
  onCreated(listener: (request: AccessRequest) => void): () => void {
    this.#created.add(listener);
    return () => this.#created.delete(listener);
  }

  /** Called when a human denies a request, here or on another replica (held connections for it end). */
  onDenied(listener: (request: AccessRequest) => void): () => void {
    this.#denied.add(listener);
    return () => this.#denied.delete(listener);
  }

  /** Saves pending changes now; saves never overlap. */
  flush(): Promise<void> {
    this.#writing = this.#writing.then(() => this.#save());
    return this.#writing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
    this.records.close();
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
    const key = keyOf(request.agent, request.host, request.port);
    this.#byKey.delete(key);
    this.#byId.delete(request.id);
    this.#perAgent.set(request.agent, (this.#perAgent.get(request.agent) ?? 1) - 1);
    this.#unsaved.created.delete(key);
    this.#unsaved.repeats.delete(key);
    this.#unsaved.denied.delete(key);
    this.#unsaved.removed.set(key, request);
  }

  #event(event: AccessRequestEntry['event'], request: AccessRequest, by: string | null = null): void {
    this.options.metrics?.accessRequests.inc({ event });
    this.options.audit.append(accessRequestEntry(event, request, by)).catch((error: unknown) => this.options.log?.error({ err: error, event, request: request.id }, 'access request could not be audited'));
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.options.flushMs ?? 1000);
    this.#timer.unref();
  }

  /** Hands what changed to the store; what it could not keep waits for the next save. */
  async #save(): Promise<void> {
    const unsaved = this.#unsaved;
    if (unsaved.created.size + unsaved.repeats.size + unsaved.denied.size + unsaved.removed.size === 0) return;
    this.#unsaved = nothingUnsaved();
    const changes: RequestChanges = { created: [...unsaved.created.values()], repeats: unsaved.repeats, denied: [...unsaved.denied.values()], removed: [...unsaved.removed.values()] };
    let fresh: readonly AccessRequest[];
    try {
      fresh = await this.records.save(changes, [...this.#byKey.values()]);
    } catch (error) {
      this.#keepUnsaved(unsaved);
      this.options.log?.error({ err: error }, 'access requests could not be saved; kept in memory for the next save');
      this.#schedule();
      return;
    }
    for (const request of fresh) for (const listener of this.#created) listener(request);
  }

  /** Puts back changes a failed save did not keep, under what changed since. */
  #keepUnsaved(failed: Unsaved): void {
    const now = this.#unsaved;
    for (const [key, request] of failed.created) if (this.#byKey.get(key) === request) now.created.set(key, request);
    for (const [key, repeats] of failed.repeats) {
      if (!this.#byKey.has(key) || now.created.has(key)) continue;
      const later = now.repeats.get(key);
      now.repeats.set(key, { count: repeats.count + (later?.count ?? 0), lastSeen: later?.lastSeen ?? repeats.lastSeen });
    }
    for (const [key, request] of failed.denied) if (this.#byKey.get(key) === request && !now.denied.has(key)) now.denied.set(key, request);
    for (const [key, request] of failed.removed) if (!this.#byKey.has(key)) now.removed.set(key, request);
  }

  /**
   * Another replica changed the requests: take the kept list, plus what this replica has not
   * saved yet. A denial made there ends the holds waiting on it here.
   */
  async #resync(): Promise<void> {
    let kept: Mutable<AccessRequest>[];
    try {
      ({ requests: kept } = await this.records.load());
    } catch (error) {
      this.options.log?.warn({ err: error }, 'access requests could not be re-read; the ones held here are kept');
      return;
    }
    const before = new Map(this.#byKey);
    this.#byKey.clear();
    this.#byId.clear();
    this.#perAgent.clear();
    const { created, repeats, removed } = this.#unsaved;
    for (const request of kept) {
      const key = keyOf(request.agent, request.host, request.port);
      if (removed.has(key)) continue;
      const local = repeats.get(key);
      if (local !== undefined) {
        request.count += local.count;
        if (local.lastSeen > request.lastSeen) request.lastSeen = local.lastSeen;
      }
      this.#add(request);
      if (request.status === 'denied' && before.get(key)?.status === 'pending') for (const listener of this.#denied) listener(request);
    }
    for (const [key, request] of created) if (!this.#byKey.has(key)) this.#add(request);
  }
}
