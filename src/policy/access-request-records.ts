// What an access request is, and the storage the access request store keeps them in: this host's
// file (access-request-file.ts) or a fleet's Redis (redis-access-requests.ts).
import type { IdentitySource } from '../agent.js';

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

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What changed since the last save, for a store that keeps requests one by one. */
export interface RequestChanges {
  readonly created: readonly AccessRequest[];
  /** repeats of requests kept before: how many more were seen here, and when last */
  readonly repeats: ReadonlyMap<string, { readonly count: number; readonly lastSeen: Date }>;
  readonly denied: readonly AccessRequest[];
  /** cleared by a rule or approval, or expired */
  readonly removed: readonly AccessRequest[];
}

export interface AccessRequestRecords {
  /** every request kept; `corrupt` says what could not be read and where it was moved */
  load(): Promise<{ readonly requests: Mutable<AccessRequest>[]; readonly corrupt: { readonly movedTo: string; readonly reason: string } | null }>;
  /**
   * Keeps `changes` (`all` is every request as it is now). Resolves to the created requests that
   * were new to the store: another replica may have made the same one first, and announced it.
   */
  save(changes: RequestChanges, all: readonly AccessRequest[]): Promise<readonly AccessRequest[]>;
  /** calls `changed` when another replica changed the requests; a file never does */
  watch(changed: () => void): void;
  close(): void;
}

const SOURCES: ReadonlySet<string> = new Set<IdentitySource>(['token', 'uid', 'cidr', 'anonymous']);

/** One agent, host and port: a request's identity across restarts and replicas. */
export function keyOf(agent: string, host: string, port: number): string {
  return `${agent}\u0000${host}\u0000${port}`;
}

/** A request as kept: dates as ISO strings, snake_case. */
export function requestRecord(request: AccessRequest): Record<string, unknown> {
  return {
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
  };
}

/** The inverse of requestRecord; `where` names the request in the error when a field is wrong. */
export function parseRequest(raw: unknown, where: string): Mutable<AccessRequest> {
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
  if (!valid) throw new Error(`${where} is malformed`);
  return { id, agent, groups: groups as string[], via: via as IdentitySource, host, port: port as number, count: count as number, status, deniedBy, firstSeen, lastSeen };
}
