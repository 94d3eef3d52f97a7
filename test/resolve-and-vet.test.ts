// Proves resolve-and-vet against a real DNS server in a loopback-only namespace: every answer is
// vetted, one bad answer denies the name, and each name is looked up exactly once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  AddressGuard,
  ConnectConfigError,
  createResolver,
  dial,
  ForbiddenDestinationError,
  resolveAndVet,
  ServerResolver,
  SystemResolver,
  type Resolver,
} from '../src/connect/index.js';
import { isSluiceError } from '../src/errors.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';
import { Metrics } from '../src/obs/metrics.js';
import { CountingResolver } from './support/counting-resolver.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { insideLoopbackNamespace } from './support/netns.js';

function assertForbidden(addressClass: string, address: string): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof ForbiddenDestinationError, String(error));
    assert.equal(error.code, 'DESTINATION_FORBIDDEN');
    assert.equal(error.status, 403);
    assert.equal(error.addressClass, addressClass);
    assert.equal(error.address, address);
    return true;
  };
}

// The system resolver (getaddrinfo) reads /etc/resolv.conf: inside the namespace it points at a
// test DNS server on 127.0.0.1:53, through a bind mount the host never sees.
const SYSTEM_DNS_ON_LOOPBACK = 'conf=$(mktemp) && printf "nameserver 127.0.0.1\\noptions attempts:1 timeout:1\\n" > "$conf" && mount --bind "$conf" /etc/resolv.conf && rm -f "$conf"';

if (insideLoopbackNamespace(import.meta.url, [SYSTEM_DNS_ON_LOOPBACK])) {
  describe('resolveAndVet', () => {
    let dns: TestDnsServer;
    let upstream: Server;
    let guard: AddressGuard;

    before(async () => {
      dns = await startDnsServer({
        'metadata-alias.test': { A: ['169.254.169.254'] },
        'mixed.test': { A: ['93.184.215.14', '10.0.0.5'] },
        'ula.test': { A: ['93.184.215.14'], AAAA: ['fd12:3456::1'] },
        'mapped.test': { AAAA: ['::ffff:127.0.0.1'] },
        'public.test': { A: ['93.184.215.14', '93.184.215.15'], AAAA: ['2606:2800:21f::1', '2606:2800:21f::2'] },
        'empty.test': {},
        'broken.test': { servfail: true },
        'silent.test': { silent: true },
        // 40 public answers then one private: too big for UDP, so the private one is only seen over TCP
        'big.test': { A: [...Array.from({ length: 40 }, (_, index) => `93.184.216.${index + 1}`), '192.168.7.7'] },
        'local-service.test': { A: ['127.0.0.1'] },
      });
      upstream = createServer((socket) => {
        // a test that only proves the connect closes at once; its reset is expected here
        socket.on('error', () => socket.destroy());
        socket.end('hello from upstream\n');
      });
      upstream.listen(0, '127.0.0.1');
      await once(upstream, 'listening');
      guard = new AddressGuard([{ name: 'test-loopback', cidr: '127.0.0.1/32' }]);
    });

    after(async () => {
      upstream.close();
      await dns.close();
    });

    const vet = (target: string, resolver: Resolver = new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 })) =>
      resolveAndVet(parseConnectTarget(target), { addressGuard: guard, resolver });

    test('denies a name that resolves to the metadata address', async () => {
      await assert.rejects(vet('metadata-alias.test:80'), assertForbidden('metadata', '169.254.169.254'));
    });

    test('counts each refusal under its address class', async () => {
      const metrics = new Metrics({ processMetrics: false });
      const resolver = new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 });
      for (const target of ['metadata-alias.test:80', '[::ffff:a9fe:a9fe]:80', 'mixed.test:443']) {
        await assert.rejects(resolveAndVet(parseConnectTarget(target), { addressGuard: guard, resolver, metrics }), ForbiddenDestinationError);
      }
      await resolveAndVet(parseConnectTarget('public.test:443'), { addressGuard: guard, resolver, metrics });
      const counted = (await metrics.forbiddenDestinations.get()).values.map(({ labels, value }) => [labels.class, value]);
      assert.deepEqual(counted.sort(), [['metadata', 2], ['private', 1]]);
    });

    test('denies a name with one public and one private answer', async () => {
      await assert.rejects(vet('mixed.test:443'), assertForbidden('private', '10.0.0.5'));
    });

    test('denies a name whose AAAA answer is unique-local even when its A answer is public', async () => {
      await assert.rejects(vet('ula.test:443'), assertForbidden('unique_local', 'fd12:3456::1'));
    });

    test('denies an IPv4-mapped AAAA answer by the IPv4 address inside it', async () => {
      await assert.rejects(vet('mapped.test:443'), assertForbidden('loopback', '::ffff:7f00:1'));
    });

    test('vets every answer of a reply too big for UDP, fetched again over TCP', async () => {
      await assert.rejects(vet('big.test:443'), assertForbidden('private', '192.168.7.7'));
      const transports = dns.questionsFor('big.test').filter((question) => question.type === 'A').map((question) => question.transport);
      assert.deepEqual(transports, ['udp', 'tcp']);
    });

    test('answers DNS_FAILURE for NXDOMAIN, for a name without addresses and for SERVFAIL', async () => {
      for (const target of ['nowhere.test:80', 'empty.test:80', 'broken.test:80']) {
        await assert.rejects(vet(target), (error: unknown) => {
          assert.ok(isSluiceError(error) && !(error instanceof ForbiddenDestinationError), String(error));
          assert.equal(error.code, 'DNS_FAILURE', target);
          return true;
        });
      }
    });

    test('answers DNS_FAILURE within the lookup budget when the server never replies', async () => {
      const started = performance.now();
      await assert.rejects(vet('silent.test:80', new ServerResolver({ servers: [dns.server], timeoutMs: 300 })), (error: unknown) => {
        assert.ok(isSluiceError(error));
        assert.equal(error.code, 'DNS_FAILURE');
        return true;
      });
      // Never early, and bounded by the 300 ms budget rather than c-ares's defaults (5 s a try).
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290 && elapsed < 4_000, `took ${elapsed} ms`);
    });

    test('denies a metadata host name before asking DNS at all', async () => {
      const before = dns.questions.length;
      await assert.rejects(vet('Metadata.Google.Internal.:80'), assertForbidden('metadata', 'metadata.google.internal'));
      assert.equal(dns.questions.length, before);
    });

    test('vets an IP literal without any lookup', async () => {
      const resolver = new CountingResolver(new SystemResolver());
      await assert.rejects(vet('[::ffff:a9fe:a9fe]:80', resolver), assertForbidden('metadata', '::ffff:a9fe:a9fe'));
      const vetted = await vet('93.184.215.14:443', resolver);
      assert.deepEqual(vetted.addresses, [{ address: '93.184.215.14', family: 4 }]);
      assert.equal(resolver.calls, 0);
    });

    test('returns every public answer with families interleaved, IPv6 first', async () => {
      const vetted = await vet('public.test:443');
      assert.equal(vetted.destination.host, 'public.test');
      assert.deepEqual(
        vetted.addresses.map((entry) => entry.address),
        ['2606:2800:21f::1', '93.184.215.14', '2606:2800:21f::2', '93.184.215.15'],
      );
      assert.ok(Object.isFrozen(vetted) && Object.isFrozen(vetted.addresses));
    });

    test('asks the resolver exactly once per call: one A and one AAAA question, none when dialling', async () => {
      const resolver = new CountingResolver(new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 }));
      const port = (upstream.address() as AddressInfo).port;
      const vetted = await vet(`local-service.test:${port}`, resolver);
      const dialled = await dial(vetted, { timeoutMs: 2_000 });
      dialled.socket.destroy();
      assert.equal(resolver.calls, 1);
      const asked = dns.questionsFor('local-service.test').map((question) => question.type).sort();
      assert.deepEqual(asked, ['A', 'AAAA']);
    });

    test('lets a name resolving to 127.0.0.1 through an allow_cidr and really connects to it', async () => {
      const port = (upstream.address() as AddressInfo).port;
      const vetted = await vet(`local-service.test:${port}`);
      assert.deepEqual(vetted.addresses, [{ address: '127.0.0.1', family: 4, allowedBy: 'test-loopback' }]);
      const { socket, address, port: dialledPort } = await dial(vetted, { timeoutMs: 2_000 });
      socket.setEncoding('utf8');
      let received = '';
      for await (const chunk of socket) received += String(chunk);
      assert.equal(received, 'hello from upstream\n');
      assert.equal(address, '127.0.0.1');
      assert.equal(dialledPort, port);
    });

    test('without the allow_cidr the same name is denied as loopback', async () => {
      const strict = new AddressGuard();
      const resolver = new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 });
      await assert.rejects(resolveAndVet(parseConnectTarget('local-service.test:80'), { addressGuard: strict, resolver }), assertForbidden('loopback', '127.0.0.1'));
    });

    test('the system resolver returns every A and AAAA answer and a mixed answer is denied', async () => {
      const systemDns = await startDnsServer({ 'sys-mixed.test': { A: ['93.184.215.14'], AAAA: ['2606:2800:21f::1', 'fe80::1'] }, 'sys-public.test': { A: ['93.184.215.14'], AAAA: ['2606:2800:21f::1'] } }, 53);
      try {
        const resolver = new CountingResolver(new SystemResolver({ timeoutMs: 2_000 }));
        await assert.rejects(resolveAndVet(parseConnectTarget('sys-mixed.test:443'), { addressGuard: guard, resolver }), assertForbidden('link_local', 'fe80::1'));
        const vetted = await resolveAndVet(parseConnectTarget('sys-public.test:443'), { addressGuard: guard, resolver });
        assert.deepEqual(vetted.addresses.map((entry) => entry.address), ['2606:2800:21f::1', '93.184.215.14']);
        assert.equal(resolver.calls, 2);
      } finally {
        await systemDns.close();
      }
    });

    test('the system resolver path vets /etc/hosts answers too', async () => {
      await assert.rejects(resolveAndVet(parseConnectTarget('localhost:80'), { addressGuard: new AddressGuard(), resolver: new SystemResolver() }), (error: unknown) => {
        assert.ok(error instanceof ForbiddenDestinationError);
        assert.equal(error.addressClass, 'loopback');
        return true;
      });
    });

    test('uses the configured servers when connect.resolvers names some, else the system resolver', () => {
      assert.ok(createResolver({ resolvers: [] }) instanceof SystemResolver);
      assert.ok(createResolver({ resolvers: [dns.server], timeoutMs: 10_000 }) instanceof ServerResolver);
    });

    test('rejects a configured resolver given by name rather than address', () => {
      assert.throws(() => new ServerResolver({ servers: ['127.0.0.1:53', 'dns.example:53'] }), (error: unknown) => {
        assert.ok(error instanceof ConnectConfigError);
        assert.equal(error.field, 'connect.resolvers[1]');
        return true;
      });
    });
  });
}
