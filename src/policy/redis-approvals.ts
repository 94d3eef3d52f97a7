// A fleet's approvals in Redis: one hash of approvals by id, and a channel each change is announced
// on. Every replica keeps its own index and re-reads the hash on each notice and every poll
// interval (a notice lost to a reconnect heals by then), so no request waits on Redis.
import type { Redis, Result } from 'ioredis';
import { SluiceError } from '../errors.js';
import { parseApproval, type ApprovalRecords, type StoredApproval } from './approval-store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sluiceApprovalUpdate(key: string, id: string, json: string): Result<number, Context>;
  }
}

// A first use must never bring back an approval another replica revoked meanwhile.
const UPDATE_IF_KEPT = `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0`;

export interface RedisApprovalsOptions {
  readonly redis: Redis;
  /** opens a second connection when watching starts: one that subscribes can send nothing else */
  readonly subscriber: () => Redis;
  readonly keyPrefix: string;
  readonly pollMs: number;
  readonly onError: (error: unknown, what: string) => void;
}

export class RedisApprovals implements ApprovalRecords {
  readonly #key: string;
  #poll: NodeJS.Timeout | undefined;
  #subscriber: Redis | undefined;

  constructor(private readonly options: RedisApprovalsOptions) {
    this.#key = `${options.keyPrefix}approvals`;
    options.redis.defineCommand('sluiceApprovalUpdate', { numberOfKeys: 1, lua: UPDATE_IF_KEPT });
  }

  async load(): Promise<StoredApproval[]> {
    const kept = await this.options.redis.hgetall(this.#key);
    return Object.entries(kept).flatMap(([id, json]) => {
      try {
        return [parseApproval(`redis ${this.#key} ${id}`, JSON.parse(json))];
      } catch (error) {
        this.options.onError(error, 'an approval kept in Redis is unreadable; it is not in force');
        return [];
      }
    });
  }

  async added(approval: StoredApproval): Promise<void> {
    await this.#change(() => this.options.redis.hset(this.#key, approval.id, JSON.stringify(approval)));
  }

  async updated(approval: StoredApproval): Promise<void> {
    await this.#change(() => this.options.redis.sluiceApprovalUpdate(this.#key, approval.id, JSON.stringify(approval)));
  }

  async removed(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#change(() => this.options.redis.hdel(this.#key, ...ids));
  }

  watch(changed: () => void): void {
    const subscriber = this.options.subscriber();
    this.#subscriber = subscriber;
    subscriber.on('message', (channel: string) => {
      if (channel === this.#key) changed();
    });
    // ioredis subscribes again after a reconnect; what changed while it was away is read then.
    subscriber.on('ready', changed);
    subscriber.subscribe(this.#key).catch((error: unknown) => this.options.onError(error, 'approval notices could not be subscribed to; polling only'));
    this.#poll = setInterval(changed, this.options.pollMs);
    this.#poll.unref();
  }

  close(): void {
    clearInterval(this.#poll);
    this.#subscriber?.disconnect();
  }

  /** A change no replica can see is not made: the caller gets SHARED_STATE_UNREACHABLE. */
  async #change(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      throw new SluiceError('SHARED_STATE_UNREACHABLE', (error as Error).message, { cause: error });
    }
    await this.options.redis.publish(this.#key, 'changed').catch((error: unknown) => this.options.onError(error, 'approval change not announced; other replicas see it at their next poll'));
  }
}
