// A fleet's per-agent request rate in Redis: the same token bucket each replica keeps alone, held
// in one hash per agent and taken from by a Lua script, so the fleet together admits the agent's
// rate, not the rate times its replicas. The key expires once the bucket would be full again.
import type { Redis, Result } from 'ioredis';
import type { SharedRate } from './agent-limits.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    sluiceRateTake(key: string, perSecond: number, burst: number, now: number): Result<[number, number], Context>;
  }
}

// Returns {1, 0} when a token was taken, else {0, milliseconds until the next one}.
const TAKE = `
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(kept[1]) or burst, tonumber(kept[2]) or now
if now > at then tokens = math.min(burst, tokens + (now - at) * rate / 1000) end
local admitted, wait = 0, math.ceil((1 - tokens) * 1000 / rate)
if tokens >= 1 then tokens, admitted, wait = tokens - 1, 1, 0 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {admitted, wait}
`;

export class RedisRate implements SharedRate {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly now: () => number,
  ) {
    redis.defineCommand('sluiceRateTake', { numberOfKeys: 1, lua: TAKE });
  }

  async take(agent: string, perSecond: number, burst: number): Promise<{ admitted: boolean; waitMs: number } | null> {
    try {
      const [admitted, waitMs] = await this.redis.sluiceRateTake(`${this.keyPrefix}rate:${agent}`, perSecond, burst, this.now());
      return { admitted: admitted === 1, waitMs };
    } catch {
      // Unreachable: the caller limits with this replica's own bucket (docs/fleet.md says why).
      return null;
    }
  }
}
