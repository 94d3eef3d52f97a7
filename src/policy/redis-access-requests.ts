// A fleet's access requests in Redis: one hash of requests by agent, host and port, with their
// counts and last-seen times in two more hashes so replicas add to them atomically. A request is
// created once for the fleet (HSETNX): only the replica that made it announces it.
import type { Redis, Result } from 'ioredis';
import { parseRequest, requestRecord, keyOf, type AccessRequest, type AccessRequestRecords, type Mutable, type RequestChanges } from './access-request-records.js';
import { ChangeNotices, defineUpdateIfKept, type ChangeNoticesOptions } from './redis-shared.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sluiceRequestSeen(requests: string, counts: string, seen: string, field: string, json: string, count: number, seenMs: number): Result<number, Context>;
  }
}

// ARGV: field, the request (empty: a repeat of one kept), how many times seen, when last.
// Returns 1 for a request new to the fleet, 0 for one kept already, -1 for a repeat of one gone.
const SEEN = `
local new = 0
if ARGV[2] ~= '' then
  new = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[3])
if tonumber(ARGV[4]) > tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
return new
`;

export interface RedisAccessRequestsOptions extends Omit<ChangeNoticesOptions, 'channel'> {
  readonly keyPrefix: string;
}

export class RedisAccessRequests implements AccessRequestRecords {
  readonly #requests: string;
  readonly #counts: string;
  readonly #seen: string;
  readonly #notices: ChangeNotices;

  constructor(private readonly options: RedisAccessRequestsOptions) {
    this.#requests = `${options.keyPrefix}access-requests`;
    this.#counts = `${this.#requests}:count`;
    this.#seen = `${this.#requests}:seen`;
    this.#notices = new ChangeNotices({ ...options, channel: this.#requests });
    options.redis.defineCommand('sluiceRequestSeen', { numberOfKeys: 3, lua: SEEN });
    defineUpdateIfKept(options.redis);
  }

  async load(): ReturnType<AccessRequestRecords['load']> {
    const { redis } = this.options;
    const [requests, counts, seen] = await Promise.all([redis.hgetall(this.#requests), redis.hgetall(this.#counts), redis.hgetall(this.#seen)]);
    const kept = Object.entries(requests).flatMap(([field, json]): Mutable<AccessRequest>[] => {
      try {
        const record = JSON.parse(json) as Record<string, unknown>;
        const lastSeen = Number(seen[field] ?? Number.NaN);
        return [parseRequest({ ...record, count: Number(counts[field] ?? 1), last_seen: Number.isNaN(lastSeen) ? record['first_seen'] : new Date(lastSeen).toISOString() }, `redis ${this.#requests} ${JSON.stringify(field)}`)];
      } catch (error) {
        this.options.onError(error, 'an access request kept in Redis is unreadable; it is left out');
        return [];
      }
    });
    return { requests: kept, corrupt: null };
  }

  async save(changes: RequestChanges): Promise<readonly AccessRequest[]> {
    const { redis } = this.options;
    const field = (request: AccessRequest): string => keyOf(request.agent, request.host, request.port);
    const seen = (key: string, json: string, count: number, lastSeen: Date): Promise<number> => redis.sluiceRequestSeen(this.#requests, this.#counts, this.#seen, key, json, count, lastSeen.getTime());
    const [created] = await Promise.all([
      Promise.all(changes.created.map((request) => seen(field(request), JSON.stringify(requestRecord(request)), request.count, request.lastSeen))),
      Promise.all([...changes.repeats].map(([key, repeats]) => seen(key, '', repeats.count, repeats.lastSeen))),
      Promise.all(changes.denied.map((request) => redis.sluiceUpdateIfKept(this.#requests, field(request), JSON.stringify(requestRecord(request))))),
      changes.removed.length === 0 ? Promise.resolve() : Promise.all([this.#requests, this.#counts, this.#seen].map((key) => redis.hdel(key, ...changes.removed.map(field)))),
    ]);
    await this.#notices.announce();
    return changes.created.filter((_, index) => created[index] === 1);
  }

  watch(changed: () => void): void {
    this.#notices.watch(changed);
  }

  close(): void {
    this.#notices.close();
  }
}
