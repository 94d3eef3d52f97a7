// Proves the address guard refuses the appliance's own addresses: in a loopback-only namespace a
// veth interface carries public-looking addresses and a service listens on all interfaces.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { NetworkInterfaceInfo } from 'node:os';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { AddressGuard, LocalAddresses, type PollTimer } from '../src/connect/index.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startSluice, type RunningSluice } from './support/sluice.js';
import { auditByRequest, forbiddenCounts, probe, startCatchAll, type CatchAllListener, type ProbeRoute } from './support/ssrf-probe.js';

const run = promisify(execFile);
// Public addresses, safe here: the namespace has no route out, so nothing can leave the machine.
const OWN_V4 = '8.8.4.4';
const OWN_V6 = '2001:4860:4860::8844';
const ADDED_LATER = '9.9.9.9';
const LEARN_MODE = 'mode: learn\nlimits:\n  idle_timeout_ms: 2000';
const DECISION_DENY = /^sluice-decision: deny; reason=destination_forbidden; rule=-; request-id=(\S+?)\r?$/im;

function entry(address: string): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  return v6
    ? { address, netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/128`, scopeid: 0 }
    : { address, netmask: '255.255.255.255', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/32` };
}

/** A PollTimer whose ticks the test fires by hand. */
function manualTimer(): PollTimer & { tick(): void; stopped: boolean } {
  let tick = (): void => undefined;
  const timer = {
    stopped: false,
    every(_ms: number, callback: () => void) {
      tick = callback;
      return () => {
        timer.stopped = true;
      };
    },
    tick: () => tick(),
  };
  return timer;
}

if (insideLoopbackNamespace(import.meta.url)) {
  describe('LocalAddresses', () => {
    test('follows interface addresses as they are added and removed, on each poll', () => {
      let interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [entry('203.0.113.9')] };
      const local = new LocalAddresses(() => interfaces);
      const timer = manualTimer();
      const stop = local.poll(5_000, timer);
      assert.equal(local.has('203.0.113.9'), true);
      interfaces = { eth0: [entry(OWN_V4), entry(OWN_V6)] };
      assert.equal(local.has(OWN_V4), false, 'nothing changes between polls');
      timer.tick();
      assert.equal(local.has(OWN_V4), true);
      assert.equal(local.has(OWN_V6), true);
      assert.equal(local.has('203.0.113.9'), false, 'a removed address is forgotten');
      stop();
      assert.equal(timer.stopped, true);
    });

    test('keeps the last known addresses when reading the interfaces fails', () => {
      let fail = false;
      const local = new LocalAddresses(() => {
        if (fail) throw new Error('getifaddrs: ENOMEM');
        return { eth0: [entry(OWN_V4)] };
      });
      fail = true;
      local.refresh();
      assert.equal(local.has(OWN_V4), true);
    });
  });

  describe('AddressGuard and the host\'s own addresses', () => {
    const local = new LocalAddresses(() => ({ lo: [entry('127.0.0.1'), entry('::1')], eth0: [entry(OWN_V4), entry(OWN_V6), entry('10.0.0.5')] }));

    test('refuses a public address of a local interface as local_interface, also in its IPv4-mapped spelling', () => {
      const guard = new AddressGuard([], local);
      assert.deepEqual(guard.vet(OWN_V4), { ok: false, address: OWN_V4, class: 'local_interface' });
      assert.deepEqual(guard.vet(OWN_V6), { ok: false, address: OWN_V6, class: 'local_interface' });
      assert.deepEqual(guard.vet(`::ffff:${OWN_V4}`), { ok: false, address: '::ffff:808:404', class: 'local_interface' });
      assert.deepEqual(guard.vet('8.8.8.8'), { ok: true, address: '8.8.8.8', family: 4 });
      assert.deepEqual(guard.vet('127.0.0.1'), { ok: false, address: '127.0.0.1', class: 'loopback' });
    });

    test('opens a local address only through an allow_cidrs entry naming exactly it', () => {
      const guard = new AddressGuard(
        [
          { name: 'office', cidr: '10.0.0.0/8' },
          { name: 'google-dns', cidr: '8.8.0.0/16' },
          { name: 'appliance-self', cidr: `${OWN_V6}/128` },
        ],
        local,
      );
      assert.deepEqual(guard.vet('10.0.0.6'), { ok: true, address: '10.0.0.6', family: 4, allowedBy: 'office' });
      assert.deepEqual(guard.vet('10.0.0.5'), { ok: false, address: '10.0.0.5', class: 'local_interface' });
      assert.deepEqual(guard.vet(OWN_V4), { ok: false, address: OWN_V4, class: 'local_interface' });
      assert.deepEqual(guard.vet(OWN_V6), { ok: true, address: OWN_V6, family: 6, allowedBy: 'appliance-self' });
    });
  });

  describe('the appliance\'s own addresses through the proxy', () => {
    let dns: TestDnsServer;
    let service: CatchAllListener;

    before(async () => {
      // Made here rather than in the namespace setup: netns.ts insists on a namespace with only lo.
      // A veth pair whose far end stays in this namespace: an "eth0" with nowhere to send to.
      await run('ip', ['link', 'add', 'own0', 'type', 'veth', 'peer', 'name', 'own1']);
      await run('ip', ['link', 'set', 'own0', 'up']);
      await run('ip', ['link', 'set', 'own1', 'up']);
      await run('ip', ['addr', 'add', `${OWN_V4}/32`, 'dev', 'own0']);
      await run('ip', ['-6', 'addr', 'add', `${OWN_V6}/128`, 'dev', 'own0', 'nodad']);
      // The service the issue found exposed: listening on every interface, IPv4 and IPv6.
      service = await startCatchAll();
      dns = await startDnsServer({ 'self.test': { A: [OWN_V4] }, 'self-v6.test': { AAAA: [OWN_V6] } });
    });

    after(async () => {
      await service.close();
      await dns.close();
      await run('ip', ['link', 'del', 'own0']);
    });

    async function expectLocalInterface(sluice: RunningSluice, host: string, address: string, route: ProbeRoute): Promise<void> {
      const reply = await probe(sluice.proxyUrl, route, host, service.port);
      assert.equal(reply.status, 403, `${route} ${host}: ${reply.headers}`);
      const requestId = DECISION_DENY.exec(reply.headers)?.[1];
      assert.ok(requestId !== undefined, reply.headers);
      const records = (await auditByRequest(sluice.stateDir)).get(requestId) ?? [];
      const decision = records.find((record) => record.kind === 'decision');
      assert.equal(decision?.address_class, 'local_interface', `${host}: ${JSON.stringify(records)}`);
      assert.equal(decision?.address, address, host);
    }

    test('refuses the host\'s own addresses by literal, mapped spelling, IPv6 and name, and counts them', async (t) => {
      const sluice = await startSluice({ config: `${LEARN_MODE}\nconnect:\n  resolvers: ["${dns.server}"]` });
      t.after(() => sluice.close());
      const accepted = service.accepted.length;
      const targets: [string, string][] = [
        [OWN_V4, OWN_V4],
        [`[::ffff:${OWN_V4}]`, '::ffff:808:404'],
        [`[${OWN_V6}]`, OWN_V6],
        ['self.test', OWN_V4],
        ['self-v6.test', OWN_V6],
      ];
      for (const [host, address] of targets) {
        for (const route of ['curl-forward', 'curl-tunnel', 'raw-forward', 'raw-tunnel'] as const) await expectLocalInterface(sluice, host, address, route);
      }
      assert.deepEqual(service.accepted.slice(accepted), [], 'the service never saw a connection');
      assert.equal((await forbiddenCounts(sluice.adminUrl)).get('local_interface'), targets.length * 4);
    });

    test('reaches the host\'s own address once allow_cidrs names it', async (t) => {
      const sluice = await startSluice({ config: `${LEARN_MODE}\nconnect:\n  allow_cidrs:\n    - { name: appliance-self, cidr: ${OWN_V4}/32 }` });
      t.after(() => sluice.close());
      for (const route of ['curl-forward', 'curl-tunnel'] as const) {
        const reply = await probe(sluice.proxyUrl, route, OWN_V4, service.port);
        assert.equal(reply.status, 200, `${route}: ${reply.headers}`);
        assert.equal(reply.body, `::ffff:${OWN_V4}`, 'the service answered on the host\'s own address');
      }
      await expectLocalInterface(sluice, `[${OWN_V6}]`, OWN_V6, 'curl-forward');
    });

    test('refuses an address added to an interface after start, once the next poll has seen it', async (t) => {
      const sluice = await startSluice({ config: LEARN_MODE });
      t.after(() => sluice.close());
      // Not local yet: dialled like any public address, and unreachable from this namespace.
      const before = await probe(sluice.proxyUrl, 'curl-forward', ADDED_LATER, service.port);
      assert.equal(before.status, 502, before.headers);
      await run('ip', ['addr', 'add', `${ADDED_LATER}/32`, 'dev', 'own0']);
      // Waits for the app's real poll (every 5 s); the deadline only bounds a broken build.
      const deadline = Date.now() + 30_000;
      let reply = await probe(sluice.proxyUrl, 'curl-forward', ADDED_LATER, service.port);
      while (reply.status !== 403 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        reply = await probe(sluice.proxyUrl, 'curl-forward', ADDED_LATER, service.port);
      }
      await expectLocalInterface(sluice, ADDED_LATER, ADDED_LATER, 'curl-forward');
    });
  });
}
