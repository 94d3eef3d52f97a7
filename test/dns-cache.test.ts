// The DNS cache behind resolveAndVet, against a real DNS server and a clock the test moves: vetted
// answers are kept for their (clamped) TTL, only vetted sets are kept, rebinding after expiry is
// refused, and through the running proxy a repeated name costs one lookup, counted by outcome.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AddressGuard,
  DnsCache,
  ForbiddenDestinationError,
  resolveAndVet,
  ServerResolver,
  SystemResolver,
  type CacheOutcome,
  type DnsCacheOptions,
  type VettedAddress,
} from '../src/connect/index.js';
import { isSluiceError } from '../src/errors.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';
import { configIssues } from './support/config-issues.js';
import { CountingResolver } from './support/counting-resolver.js';
import { curl } from './support/curl.js';
import { startDnsServer } from './support/dns-server.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

const PUBLIC = '93.184.215.14';
const DEFAULTS: DnsCacheOptions = { maxEntries: 100, minTtlMs: 1_000, maxTtlMs: 300_000, defaultTtlMs: 30_000, negativeTtlMs: 5_000 };

/** A cache on a clock that moves only when the test sets `at`, counting each outcome. */
function cacheFor(options: Partial<DnsCacheOptions> = {}) {
  const clock = { at: 0 };
  const counts: Record<CacheOutcome, number> = { hit: 0, miss: 0, expired: 0 };
  const cache = new DnsCache<readonly VettedAddress[]>({ ...DEFAULTS, ...options }, () => clock.at, (outcome) => (counts[outcome] += 1));
  return { cache, clock, counts };
}

function isForbidden(addressClass: string): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof ForbiddenDestinationError, String(error));
    assert.equal(error.addressClass, addressClass);
    return true;
  };
}

function isDnsFailure(error: unknown): true {
  assert.ok(isSluiceError(error) && !(error instanceof ForbiddenDestinationError), String(error));
  assert.equal(error.code, 'DNS_FAILURE');
  return true;
}

describe('the DNS cache in resolveAndVet', () => {
  const fixture = suiteFixture(async (keep) => {
    const dns = keep(
      await startDnsServer({
        'short.test': { A: [PUBLIC], ttl: 30 },
        'zero.test': { A: [PUBLIC], ttl: 0 },
        'long.test': { A: [PUBLIC], ttl: 86_400 },
        'rebind.test': { A: [PUBLIC], ttl: 5 },
        'mixed.test': { A: [PUBLIC, '10.0.0.5'] },
        'broken.test': { servfail: true },
        'burst.test': { A: [PUBLIC], AAAA: ['2606:2800:21f::1'] },
        'own.test': { A: ['93.184.215.20'] },
        'a.test': { A: [PUBLIC] },
        'b.test': { A: [PUBLIC] },
        'c.test': { A: [PUBLIC] },
      }),
    );
    return { dns, resolver: new ServerResolver({ servers: [dns.server], timeoutMs: 1_000, tries: 1 }) };
  });

  const vet = (name: string, cache: DnsCache<readonly VettedAddress[]>, guard = new AddressGuard()) =>
    resolveAndVet(parseConnectTarget(`${name}:443`), { addressGuard: guard, resolver: fixture().resolver, cache });
  const asked = (name: string): number => fixture().dns.questionsFor(name).length;

  test('keeps a vetted answer for its TTL and asks DNS again once it has passed', async () => {
    const { cache, clock, counts } = cacheFor();
    assert.deepEqual((await vet('short.test', cache)).addresses, [{ address: PUBLIC, family: 4 }]);
    assert.equal(asked('short.test'), 2, 'one A and one AAAA question');
    clock.at = 29_999;
    assert.deepEqual((await vet('short.test', cache)).addresses, [{ address: PUBLIC, family: 4 }]);
    assert.equal(asked('short.test'), 2);
    clock.at = 30_000;
    await vet('short.test', cache);
    assert.equal(asked('short.test'), 4);
    assert.deepEqual(counts, { hit: 1, miss: 1, expired: 1 });
  });

  test('raises a TTL below min_ttl_ms and cuts one above max_ttl_ms', async () => {
    // name, the last instant its answer is kept (TTL 0 raised to 1 s, 1 day cut to 5 min), and the first it is not
    for (const [name, kept, expired] of [['zero.test', 999, 1_000], ['long.test', 299_999, 300_000]] as const) {
      const { cache, clock } = cacheFor();
      await vet(name, cache);
      clock.at = kept;
      await vet(name, cache);
      assert.equal(asked(name), 2, `${name} kept at ${kept} ms`);
      clock.at = expired;
      await vet(name, cache);
      assert.equal(asked(name), 4, `${name} asked again at ${expired} ms`);
    }
  });

  test('a name that rebinds to a private address is refused once its TTL passes, and nothing stays cached', async () => {
    const { dns } = fixture();
    const { cache, clock } = cacheFor();
    await vet('rebind.test', cache);
    dns.zone = { ...dns.zone, 'rebind.test': { A: ['10.0.0.5'], ttl: 5 } };
    clock.at = 4_999;
    // Within the TTL the vetted set is what is used, never the new answer.
    assert.deepEqual((await vet('rebind.test', cache)).addresses, [{ address: PUBLIC, family: 4 }]);
    clock.at = 5_000;
    await assert.rejects(vet('rebind.test', cache), isForbidden('private'));
    assert.equal(cache.size, 0);
    const before = asked('rebind.test');
    await assert.rejects(vet('rebind.test', cache), isForbidden('private'));
    assert.equal(asked('rebind.test'), before + 2, 'the refused answer was not kept');
  });

  test('never keeps an answer that includes a forbidden address', async () => {
    const { cache } = cacheFor();
    await assert.rejects(vet('mixed.test', cache), isForbidden('private'));
    await assert.rejects(vet('mixed.test', cache), isForbidden('private'));
    assert.equal(asked('mixed.test'), 4);
    assert.equal(cache.size, 0);
  });

  test('keeps NXDOMAIN for negative_ttl_ms and never keeps SERVFAIL', async () => {
    const { cache, clock } = cacheFor();
    await assert.rejects(vet('nowhere.test', cache), isDnsFailure);
    clock.at = 4_999;
    await assert.rejects(vet('nowhere.test', cache), isDnsFailure);
    assert.equal(asked('nowhere.test'), 2);
    clock.at = 5_000;
    await assert.rejects(vet('nowhere.test', cache), isDnsFailure);
    assert.equal(asked('nowhere.test'), 4);
    await assert.rejects(vet('broken.test', cache), isDnsFailure);
    await assert.rejects(vet('broken.test', cache), isDnsFailure);
    assert.equal(asked('broken.test'), 4);
  });

  test('requests for one name that overlap share a single lookup', async () => {
    const { cache, counts } = cacheFor();
    const all = await Promise.all(Array.from({ length: 10 }, () => vet('burst.test', cache)));
    assert.ok(all.every((vetted) => vetted.addresses.length === 2));
    assert.equal(asked('burst.test'), 2);
    assert.equal(counts.miss, 10);
  });

  test('drops the least recently used name beyond max_entries', async () => {
    const { cache } = cacheFor({ maxEntries: 2 });
    await vet('a.test', cache);
    await vet('b.test', cache);
    await vet('a.test', cache);
    await vet('c.test', cache);
    assert.equal(cache.size, 2);
    await vet('a.test', cache);
    await vet('b.test', cache);
    assert.deepEqual([asked('a.test'), asked('b.test'), asked('c.test')], [2, 4, 2]);
  });

  test("a kept answer is vetted again when used: an address that became the host's own is refused at once", async () => {
    const { cache } = cacheFor();
    const own = new Set<string>();
    const guard = new AddressGuard([], { has: (key) => own.has(key) });
    await vet('own.test', cache, guard);
    own.add('93.184.215.20');
    await assert.rejects(vet('own.test', cache, guard), isForbidden('local_interface'));
    assert.equal(asked('own.test'), 2, 'refused from the cache, without a lookup');
    assert.equal(cache.size, 0);
  });

  test("keeps the system resolver's answers, which carry no TTL, for default_ttl_ms", async () => {
    const { cache, clock } = cacheFor();
    const resolver = new CountingResolver(new SystemResolver());
    const guard = new AddressGuard([{ name: 'loopback', cidr: '127.0.0.0/8' }, { name: 'loopback-v6', cidr: '::1/128' }]);
    const viaHostsFile = () => resolveAndVet(parseConnectTarget('localhost:443'), { addressGuard: guard, resolver, cache });
    await viaHostsFile();
    clock.at = 29_999;
    await viaHostsFile();
    assert.equal(resolver.calls, 1);
    clock.at = 30_000;
    await viaHostsFile();
    assert.equal(resolver.calls, 2);
  });
});

describe('the DNS cache in the running proxy', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const dns = keep(await startDnsServer({ 'cached.test': { A: ['127.0.0.1'], ttl: 300 }, 'uncached.test': { A: ['127.0.0.1'], ttl: 300 } }));
    const resolvers = `\n  resolvers: ["${dns.server}"]`;
    const cached = keep(await startSluice({ config: `${ALLOW_LOOPBACK}${resolvers}` }));
    const uncached = keep(await startSluice({ config: `${ALLOW_LOOPBACK}${resolvers}\n  dns_cache: { enabled: false }` }));
    return { origin, dns, cached, uncached };
  });

  test('a repeated name is looked up once, and sluice_dns_cache_total counts the miss and the hit', async () => {
    const { origin, dns, cached } = fixture();
    for (let round = 0; round < 2; round++) {
      const result = await curl(['-x', cached.proxyUrl, `http://cached.test:${origin.port}/`]);
      assert.equal(result.status, 200, result.stderr);
    }
    assert.equal(dns.questionsFor('cached.test').length, 2, 'one A and one AAAA question for both requests');
    const metrics = await (await fetch(`${cached.adminUrl}/metrics`)).text();
    assert.match(metrics, /^sluice_dns_cache_total\{result="miss"\} 1$/m);
    assert.match(metrics, /^sluice_dns_cache_total\{result="hit"\} 1$/m);
  });

  test('with dns_cache.enabled false every request resolves again', async () => {
    const { origin, dns, uncached } = fixture();
    for (let round = 0; round < 2; round++) assert.equal((await curl(['-x', uncached.proxyUrl, `http://uncached.test:${origin.port}/`])).status, 200);
    assert.equal(dns.questionsFor('uncached.test').length, 4);
  });

});

test('connect.dns_cache refuses TTL bounds out of order, naming the key and its line', () => {
  assert.match(configIssues('connect:\n  dns_cache:\n    min_ttl_ms: 10000\n    max_ttl_ms: 5000\n'), /sluice\.yaml:3:\d+: connect\.dns_cache\.min_ttl_ms: 10000 is above max_ttl_ms \(5000\)/);
  assert.match(configIssues('connect:\n  dns_cache:\n    default_ttl_ms: 500\n'), /sluice\.yaml:3:\d+: connect\.dns_cache\.default_ttl_ms: 500 is outside min_ttl_ms\.\.max_ttl_ms \(1000\.\.300000\)/);
});
