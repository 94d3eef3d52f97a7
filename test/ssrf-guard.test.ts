// Proves end to end, through the real proxy and real curl in a loopback-only namespace, that Learn
// mode (policy allows all) still never connects to a metadata, private or special-purpose address.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyChain } from '../src/audit/verify.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import {
  FORBIDDEN_NAME_TARGETS,
  METADATA_ADDRESS_TARGETS,
  METADATA_NAME_TARGETS,
  PERCENT_ENCODED_LITERALS,
  PUBLIC_ADDRESSES,
  PUBLIC_NAME,
  SPECIAL_V4_TARGETS,
  SPECIAL_V6_TARGETS,
  SPELLING_TARGETS,
  ssrfZone,
  type ForbiddenTarget,
} from './support/forbidden-targets.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startSluice, type RunningSluice } from './support/sluice.js';
import { ALL_ROUTES, auditByRequest, CURL_ROUTES, forbiddenCounts, inFlight, probe, startCatchAll, type CatchAllListener, type ProbeRoute } from './support/ssrf-probe.js';

// AnyIP: every IPv4 and IPv6 unicast address is local to this namespace, so the catch-all listener
// accepts a connection to any of them. Its silence after a refusal proves no dial was attempted,
// not merely that one failed; the public controls prove it does hear a dial when one happens.
const EVERY_ADDRESS_LOCAL = ['ip route add local 0.0.0.0/0 dev lo', 'ip -6 route add local ::/0 dev lo'];

// Should a guard regression let a raw CONNECT through, the open tunnel ends within seconds
// instead of holding the proxy's shutdown for the default two minutes.
const LEARN_MODE = 'mode: learn\nlimits:\n  idle_timeout_ms: 2000';

const DECISION_DENY = /^sluice-decision: deny; reason=destination_forbidden; rule=-; request-id=(\S+?)\r?$/im;
const PROBES_IN_FLIGHT = 8;

interface Refusal {
  readonly target: ForbiddenTarget;
  readonly route: ProbeRoute;
  readonly requestId: string;
}

function tally(targets: readonly Refusal[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { target } of targets) counts.set(target.addressClass, (counts.get(target.addressClass) ?? 0) + 1);
  return counts;
}

if (insideLoopbackNamespace(import.meta.url, EVERY_ADDRESS_LOCAL)) {
  describe('SSRF guard through the proxy', () => {
    let dns: TestDnsServer;
    let catchAll: CatchAllListener;

    before(async () => {
      dns = await startDnsServer(ssrfZone());
      catchAll = await startCatchAll();
    });

    after(async () => {
      await catchAll.close();
      await dns.close();
    });

    /**
     * Sends every target by every route, then checks each refusal three ways: the reply (403,
     * Sluice-Decision, JSON code), its audit record (class and address), and the metric by class.
     */
    async function expectRefused(sluice: RunningSluice, targets: readonly ForbiddenTarget[], routes: readonly ProbeRoute[]): Promise<Refusal[]> {
      const countsBefore = await forbiddenCounts(sluice.adminUrl);
      const acceptedBefore = catchAll.accepted.length;
      const jobs = targets.flatMap((target) => routes.map((route) => ({ target, route })));
      const refusals = await inFlight(jobs, PROBES_IN_FLIGHT, async ({ target, route }): Promise<Refusal> => {
        const label = `${route} ${target.host}`;
        const reply = await probe(sluice.proxyUrl, route, target.host, catchAll.port);
        assert.equal(reply.status, 403, `${label}: ${reply.headers}`);
        const requestId = DECISION_DENY.exec(reply.headers)?.[1];
        assert.ok(requestId !== undefined, `${label}: Sluice-Decision names destination_forbidden in ${reply.headers}`);
        if (reply.body !== undefined) {
          const body = JSON.parse(reply.body) as { error: { code: string; request_id: string; rule: string | null } };
          assert.equal(body.error.code, 'DESTINATION_FORBIDDEN', label);
          assert.equal(body.error.request_id, requestId, label);
        }
        return { target, route, requestId };
      });
      assert.deepEqual(catchAll.accepted.slice(acceptedBefore), [], 'no refused destination was ever dialled');
      const audit = await auditByRequest(sluice.stateDir);
      for (const { target, route, requestId } of refusals) {
        const records = audit.get(requestId) ?? [];
        const label = `${route} ${target.host}`;
        assert.equal(records.length, 1, `${label}: one decision record and no close record (nothing was dialled)`);
        const [record] = records;
        assert.equal(record?.kind, 'decision', label);
        assert.equal(record?.verdict, 'deny', label);
        assert.equal(record?.reason, 'destination_forbidden', label);
        assert.equal(record?.address_class, target.addressClass, label);
        assert.equal(record?.address, target.address, label);
        assert.equal(record?.request_kind, route.endsWith('tunnel') ? 'tunnel' : 'forward', label);
      }
      const countsAfter = await forbiddenCounts(sluice.adminUrl);
      for (const [addressClass, count] of tally(refusals)) {
        assert.equal((countsAfter.get(addressClass) ?? 0) - (countsBefore.get(addressClass) ?? 0), count, `sluice_forbidden_destinations_total{class="${addressClass}"}`);
      }
      return refusals;
    }

    describe('in Learn mode with no allow_cidrs', () => {
      let sluice: RunningSluice;

      before(async () => {
        sluice = await startSluice({ config: `${LEARN_MODE}\nconnect:\n  resolvers: ["${dns.server}"]` });
      });

      after(() => sluice.close());

      test('dials public addresses and names, and the catch-all listener hears each dial', async () => {
        const requestsBefore = catchAll.requests.length;
        for (const host of [PUBLIC_ADDRESSES[0], `[${PUBLIC_ADDRESSES[1]}]`, PUBLIC_NAME]) {
          for (const route of CURL_ROUTES) {
            const reply = await probe(sluice.proxyUrl, route, host, catchAll.port);
            assert.equal(reply.status, 200, `${route} ${host}: ${reply.headers}`);
            assert.match(reply.headers, /sluice-decision: learn; reason=learn_unmatched/i);
          }
        }
        const reached = catchAll.requests.slice(requestsBefore);
        assert.equal(reached.length, 6);
        assert.ok(reached.includes(`::ffff:${PUBLIC_ADDRESSES[0]}`), reached.join(' '));
        assert.ok(reached.includes(PUBLIC_ADDRESSES[1]), reached.join(' '));
      });

      test('denies every cloud metadata address, IPv4 and IPv6, as metadata', async () => {
        await expectRefused(sluice, METADATA_ADDRESS_TARGETS, ALL_ROUTES);
      });

      test('denies loopback, RFC 1918, CGNAT, link-local, unspecified, multicast, broadcast, documentation, benchmarking and reserved IPv4', async () => {
        await expectRefused(sluice, SPECIAL_V4_TARGETS, ALL_ROUTES);
      });

      test('denies ULA, link-local, site-local and other special IPv6, and judges mapped, compatible, NAT64, 6to4 and Teredo by the IPv4 inside', async () => {
        await expectRefused(sluice, SPECIAL_V6_TARGETS, ALL_ROUTES);
      });

      test('denies decimal, octal, hex, short and IPv6 spellings of loopback and metadata addresses', async () => {
        await expectRefused(sluice, SPELLING_TARGETS, ALL_ROUTES);
      });

      test('denies names resolving to metadata, private or a mix of public and private addresses', async () => {
        await expectRefused(sluice, FORBIDDEN_NAME_TARGETS, CURL_ROUTES);
        for (const { host } of FORBIDDEN_NAME_TARGETS) assert.ok(dns.questionsFor(host).length > 0, `${host} was refused on its answers, so it was looked up`);
      });

      test('denies metadata host names without asking DNS a single question', async () => {
        await expectRefused(sluice, METADATA_NAME_TARGETS, ALL_ROUTES);
        for (const { address } of METADATA_NAME_TARGETS) assert.deepEqual(dns.questionsFor(address), [], `${address} was never looked up`);
      });

      // Percent-decoding would turn these into addresses; a host with `%` is refused outright.
      test('refuses percent-encoded IPv4 literals as bad hosts without dialling anything', async () => {
        const acceptedBefore = catchAll.accepted.length;
        for (const host of PERCENT_ENCODED_LITERALS) {
          for (const route of ['raw-forward', 'raw-tunnel'] as const) {
            const reply = await probe(sluice.proxyUrl, route, host, catchAll.port);
            assert.equal(reply.status, 400, `${route} ${host}: ${reply.headers}`);
            assert.match(reply.headers, /^sluice-decision: error; reason=bad_host; /im, `${route} ${host}`);
          }
        }
        assert.deepEqual(catchAll.accepted.slice(acceptedBefore), []);
      });

      test('leaves an intact audit chain behind all those refusals', async () => {
        const result = await verifyChain(join(sluice.stateDir, 'audit.jsonl'));
        assert.equal(result.ok, true, JSON.stringify(result));
      });
    });

    describe('with allow_cidrs naming loopback, link-local and the Azure and Alibaba ranges', () => {
      let sluice: RunningSluice;

      before(async () => {
        const allow = ['127.0.0.0/8', '169.254.0.0/16', '100.64.0.0/10', '168.63.129.0/24'].map((cidr, index) => `    - { name: opened-${index}, cidr: "${cidr}" }`);
        sluice = await startSluice({ config: `${LEARN_MODE}\nconnect:\n  resolvers: ["${dns.server}"]\n  allow_cidrs:\n${allow.join('\n')}` });
      });

      after(() => sluice.close());

      test('reaches the loopback origin by literal, short spelling and name, and a link-local one, once allow_cidrs open them', async () => {
        const requestsBefore = catchAll.requests.length;
        for (const host of ['127.0.0.1', '127.1', 'loopback.test', '169.254.1.1']) {
          for (const route of ['curl-forward', 'curl-tunnel', 'raw-forward'] as const) {
            const reply = await probe(sluice.proxyUrl, route, host, catchAll.port);
            assert.equal(reply.status, 200, `${route} ${host}: ${reply.headers}`);
            const requestId = /sluice-decision: learn; reason=learn_unmatched; rule=-; request-id=(\S+?)\r?$/im.exec(reply.headers)?.[1];
            assert.ok(requestId !== undefined, reply.headers);
            const decision = (await auditByRequest(sluice.stateDir)).get(requestId)?.find((record) => record.kind === 'decision');
            assert.deepEqual(decision?.addresses, [host === '169.254.1.1' ? host : '127.0.0.1']);
          }
        }
        const reached = catchAll.requests.slice(requestsBefore);
        assert.equal(reached.filter((address) => address === '::ffff:127.0.0.1').length, 9, reached.join(' '));
        assert.equal(reached.filter((address) => address === '::ffff:169.254.1.1').length, 3, reached.join(' '));
      });

      test('still denies every IPv4 metadata address, those inside the opened ranges included, and metadata names', async () => {
        const metadataV4 = METADATA_ADDRESS_TARGETS.filter(({ host }) => !host.startsWith('['));
        await expectRefused(sluice, metadataV4, ALL_ROUTES);
        await expectRefused(sluice, FORBIDDEN_NAME_TARGETS.filter(({ addressClass }) => addressClass === 'metadata'), CURL_ROUTES);
        await expectRefused(sluice, METADATA_NAME_TARGETS.slice(0, 3), CURL_ROUTES);
      });

      test('does not open the IPv6 spellings of an opened IPv4 range', async () => {
        const spellings: ForbiddenTarget[] = [
          { host: '[::ffff:127.0.0.1]', addressClass: 'loopback', address: '::ffff:7f00:1' },
          { host: '[64:ff9b::7f00:1]', addressClass: 'loopback', address: '64:ff9b::7f00:1' },
          { host: '[::ffff:169.254.1.1]', addressClass: 'link_local', address: '::ffff:a9fe:101' },
          { host: '[2002:7f00:1::]', addressClass: 'loopback', address: '2002:7f00:1::' },
        ];
        await expectRefused(sluice, spellings, CURL_ROUTES);
      });
    });
  });
}
