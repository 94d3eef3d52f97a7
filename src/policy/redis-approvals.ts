// A fleet's approvals in Redis: one hash of approvals by id, and a channel each change is announced
// on. Every replica keeps its own index and re-reads the hash on each notice and every poll
// interval (a notice lost to a reconnect heals by then), so no request waits on Redis.
import type { Redis } from 'ioredis';
import { SluiceError } from '../errors.js';
import { parseApproval, type ApprovalRecords, type StoredApproval } from './approval-store.js';
import { ChangeNotices, defineUpdateIfKept, type ChangeNoticesOptions } from './redis-shared.js';

export interface RedisApprovalsOptions extends Omit<ChangeNoticesOptions, 'channel'> {
  readonly keyPrefix: string;
}

export class RedisApprovals implements ApprovalRecords {
  readonly #key: string;
  readonly #notices: ChangeNotices;

  constructor(private readonly options: RedisApprovalsOptions) {
    this.#key = `${options.keyPrefix}approvals`;
    this.#notices = new ChangeNotices({ ...options, channel: this.#key });
    defineUpdateIfKept(options.redis);
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

  /** A first use must never bring back an approval another replica revoked meanwhile. */
  async updated(approval: StoredApproval): Promise<void> {
    await this.#change(() => this.options.redis.sluiceUpdateIfKept(this.#key, approval.id, JSON.stringify(approval)));
  }

  async removed(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#change(() => this.options.redis.hdel(this.#key, ...ids));
  }

  watch(changed: () => void): void {
    this.#notices.watch(changed);
  }

  close(): Promise<void> {
    this.#notices.close();
    return Promise.resolve();
  }

  /** A change no replica can see is not made: the caller gets SHARED_STATE_UNREACHABLE. */
  async #change(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      throw new SluiceError('SHARED_STATE_UNREACHABLE', (error as Error).message, { cause: error });
    }
    await this.#notices.announce();
  }
}
