// A fleet's budgets in Redis: every replica reads a subject's standing, decides with the same
// BudgetLimits.plan, then reserves in one Lua script that re-checks the limits atomically, so two
// replicas racing overshoot by no more than their own reservations. Unreachable Redis fails closed.
import { randomBytes } from 'node:crypto';
import type { Redis, Result } from 'ioredis';
import type { Logger } from '../obs/log.js';
import type { BudgetAccounts, Unavailable } from './budget-accounts.js';
import type { UsageRecord } from './budget-store.js';
import type { BudgetLimits, BudgetReport, Plan, PlanRequest, Reservation, Standing } from './budgets.js';
import { windowEnd, windowStart, WINDOWS } from './windows.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sluiceBudgetStanding(keyCount: number, ...keysAndArgs: (string | number)[]): Result<number[], Context>;
    sluiceBudgetReserve(keyCount: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
    sluiceBudgetSettle(keyCount: number, ...keysAndArgs: (string | number)[]): Result<number, Context>;
  }
}

// Each subject is four keys: its reservations (a sorted set of `id:tokens` scored by the lease's
// end, so a replica that died mid-call stops holding tokens when the lease ends) and the used
// counter of its current hourly, daily and monthly window.
const RESERVED = `
local function reserved(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local sum = 0
  for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do sum = sum + tonumber(string.match(member, ':(%d+)$')) end
  return sum
end
`;

const STANDING = `${RESERVED}
local out = {}
for s = 0, #KEYS / 4 - 1 do
  out[#out + 1] = reserved(KEYS[s * 4 + 1], ARGV[1])
  for w = 2, 4 do out[#out + 1] = tonumber(redis.call('GET', KEYS[s * 4 + w]) or '0') end
end
return out
`;

// ARGV: now, lease in milliseconds, member, tokens, then three limits per subject (-1: none).
// Leases are scored by the replica's clock but expire by relative TTLs, so a replica whose clock
// differs from Redis's never has its keys vanish early.
const RESERVE = `${RESERVED}
local now, lease, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
for s = 0, #KEYS / 4 - 1 do
  local held = reserved(KEYS[s * 4 + 1], now)
  for w = 1, 3 do
    local limit = tonumber(ARGV[4 + s * 3 + w])
    if limit >= 0 and tonumber(redis.call('GET', KEYS[s * 4 + 1 + w]) or '0') + held + tokens > limit then return 0 end
  end
end
for s = 0, #KEYS / 4 - 1 do
  local key = KEYS[s * 4 + 1]
  redis.call('ZADD', key, now + lease, ARGV[3])
  local ttl = redis.call('PTTL', key)
  if ttl < lease then redis.call('PEXPIRE', key, lease) end
end
return 1
`;

// ARGV: member, tokens used, then how long each window's counter is kept (to its end, and a little).
const SETTLE = `
for s = 0, #KEYS / 4 - 1 do
  redis.call('ZREM', KEYS[s * 4 + 1], ARGV[1])
  for w = 1, 3 do
    local key = KEYS[s * 4 + 1 + w]
    redis.call('INCRBY', key, ARGV[2])
    redis.call('PEXPIRE', key, ARGV[2 + w])
  end
end
return 1
`;

// Replicas that lose a race re-read and re-decide; this many lost in a row refuses the call.
const MAX_ATTEMPTS = 8;
// Counters outlive their window a little, for a replica whose clock runs slightly behind.
const COUNTER_GRACE_MS = 60_000;

export interface RedisBudgetsOptions {
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly limits: BudgetLimits;
  /** agents reported even before they use tokens (every configured one) */
  readonly agents: readonly string[];
  readonly leaseMs: number;
  readonly now: () => number;
  readonly log: Logger;
}

export class RedisBudgets implements BudgetAccounts {
  readonly limits: BudgetLimits;
  /** settlements Redis did not take (it went away mid-call), sent again once it is back */
  #unsettled: (() => Promise<void>)[] = [];

  constructor(private readonly options: RedisBudgetsOptions) {
    this.limits = options.limits;
    const { redis } = options;
    redis.defineCommand('sluiceBudgetStanding', { lua: STANDING });
    redis.defineCommand('sluiceBudgetReserve', { lua: RESERVE });
    redis.defineCommand('sluiceBudgetSettle', { lua: SETTLE });
    redis.on('ready', () => this.#retrySettlements());
  }

  get failure(): Unavailable | null {
    const { status } = this.options.redis;
    return status === 'ready' ? null : { kind: 'unavailable', code: 'BUDGET_STORE_UNREACHABLE', reason: `Redis is ${status}` };
  }

  #keys(subject: string, at: number): string[] {
    const base = `${this.options.keyPrefix}budget:${subject}`;
    return [`${base}:reserved`, ...WINDOWS.map((window) => `${base}:${window}:${windowStart(window, at)}`)];
  }

  async #standings(subjects: readonly string[], at: number): Promise<Map<string, Standing>> {
    const keys = subjects.flatMap((subject) => this.#keys(subject, at));
    const values = await this.options.redis.sluiceBudgetStanding(keys.length, ...keys, at);
    return new Map(subjects.map((subject, index) => {
      const [reserved = 0, hourly = 0, daily = 0, monthly = 0] = values.slice(index * 4, index * 4 + 4);
      return [subject, { reserved, used: { hourly, daily, monthly } }];
    }));
  }

  async plan(request: PlanRequest): Promise<Plan | Unavailable> {
    try {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const at = this.options.now();
        const subjects = this.limits.subjectsOf(request.agent);
        const standings = await this.#standings(subjects, at);
        const plan = this.limits.plan(request, at, (subject) => standings.get(subject) ?? { reserved: 0, used: { hourly: 0, daily: 0, monthly: 0 } });
        if (plan.kind === 'over') return plan;
        const member = `${randomBytes(8).toString('hex')}:${plan.reservation.tokens}`;
        const keys = subjects.flatMap((subject) => this.#keys(subject, at));
        const limits = subjects.flatMap((subject) => WINDOWS.map((window) => this.limits.limitsOf(subject)?.[window] ?? -1));
        const won = await this.options.redis.sluiceBudgetReserve(keys.length, ...keys, at, this.options.leaseMs, member, plan.reservation.tokens, ...limits);
        if (won === 1) return { ...plan, reservation: { ...plan.reservation, id: member } };
      }
      return { kind: 'unavailable', code: 'BUDGET_STORE_UNREACHABLE', reason: `${MAX_ATTEMPTS} reservations in a row lost to other replicas` };
    } catch (error) {
      this.options.log.error({ err: error }, 'shared budget store unreachable; inference refused');
      return { kind: 'unavailable', code: 'BUDGET_STORE_UNREACHABLE', reason: (error as Error).message };
    }
  }

  settle(reservation: Reservation, record: UsageRecord): Promise<void> {
    const member = reservation.id;
    if (member === undefined) return Promise.reject(new Error('a reservation made elsewhere than Redis'));
    // The windows are those of when the call settled, as on one host.
    const at = record.at;
    const keys = reservation.subjects.flatMap((subject) => this.#keys(subject, at));
    const keepFor = WINDOWS.map((window) => windowEnd(window, at) - at + COUNTER_GRACE_MS);
    const send = async (): Promise<void> => {
      await this.options.redis.sluiceBudgetSettle(keys.length, ...keys, member, record.input + record.output, ...keepFor);
    };
    return send().catch((error: unknown) => {
      this.#unsettled.push(send);
      throw error;
    });
  }

  #retrySettlements(): void {
    const waiting = this.#unsettled;
    this.#unsettled = [];
    for (const send of waiting) {
      send().catch((error: unknown) => {
        this.#unsettled.push(send);
        this.options.log.error({ err: error }, 'settlement still not taken by Redis; retried when it reconnects');
      });
    }
  }

  /** Every subject with a limit and every configured agent that has used or reserved tokens. */
  async report(): Promise<BudgetReport[]> {
    const at = this.options.now();
    const subjects = [...new Set([...this.limits.subjects, ...this.options.agents.map((name) => `agent:${name}`)])].sort();
    const standings = await this.#standings(subjects, at);
    return subjects.flatMap((subject) => {
      const standing = standings.get(subject);
      if (standing === undefined) return [];
      const idle = standing.reserved === 0 && WINDOWS.every((window) => standing.used[window] === 0);
      return this.limits.limitsOf(subject) === undefined && idle ? [] : [this.limits.report(subject, standing, at)];
    });
  }

  /** The connection belongs to the shared state, which closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

