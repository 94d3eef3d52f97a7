// What the policy stores kept in Redis (approvals, access requests) share: a change announced on a
// channel and re-read by every replica on the notice and on a poll, and an update that never
// brings back an entry another replica removed meanwhile.
import type { Redis, Result } from 'ioredis';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sluiceUpdateIfKept(key: string, field: string, value: string): Result<number, Context>;
  }
}

const UPDATE_IF_KEPT = `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0`;

/** Registers sluiceUpdateIfKept on `redis` (HSET only when the field is still there). */
export function defineUpdateIfKept(redis: Redis): void {
  redis.defineCommand('sluiceUpdateIfKept', { numberOfKeys: 1, lua: UPDATE_IF_KEPT });
}

export interface ChangeNoticesOptions {
  readonly redis: Redis;
  /** opens a second connection when watching starts: one that subscribes can send nothing else */
  readonly subscriber: () => Redis;
  readonly channel: string;
  readonly pollMs: number;
  readonly onError: (error: unknown, what: string) => void;
}

export class ChangeNotices {
  #poll: NodeJS.Timeout | undefined;
  #subscriber: Redis | undefined;

  constructor(private readonly options: ChangeNoticesOptions) {}

  /** Tells every replica watching that something changed. */
  async announce(): Promise<void> {
    await this.options.redis.publish(this.options.channel, 'changed').catch((error: unknown) => this.options.onError(error, `${this.options.channel} change not announced; other replicas see it at their next poll`));
  }

  /** Calls `changed` on each notice, after each reconnect (what changed meanwhile) and every poll interval. */
  watch(changed: () => void): void {
    const subscriber = this.options.subscriber();
    this.#subscriber = subscriber;
    // The main connection reports an outage once; this one reconnects with it, quietly.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (channel: string) => {
      if (channel === this.options.channel) changed();
    });
    // ioredis subscribes again after a reconnect.
    subscriber.on('ready', changed);
    subscriber.subscribe(this.options.channel).catch((error: unknown) => this.options.onError(error, `${this.options.channel} notices could not be subscribed to; polling only`));
    this.#poll = setInterval(changed, this.options.pollMs);
    this.#poll.unref();
  }

  close(): void {
    clearInterval(this.#poll);
    this.#subscriber?.disconnect();
  }
}
