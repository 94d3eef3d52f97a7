// Proves the dialer in a loopback-only namespace: refusals are fast, a failed or silent first
// address falls back to the next, the overall timeout holds, and no losing attempt is left open.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { errors as undiciErrors, Pool } from 'undici';
import { AddressGuard, connectorFor, dial, errorCodeFor, resolveAndVet, ServerResolver, type VettedDestination } from '../src/connect/index.js';
import { isSluiceError, SluiceError } from '../src/errors.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { insideLoopbackNamespace } from './support/netns.js';

// 198.51.100.0/24 is routed into lo but is not local: a SYN sent there loops back, is dropped as
// not ours, and the connect hangs exactly like a silent firewall, without a packet leaving.
const SILENT_NET = 'ip route add 198.51.100.0/24 dev lo';

/** Sockets of this namespace still in SYN-SENT (state 02) towards `address`, from /proc/net/tcp. */
async function synSentTo(address: string): Promise<number> {
  const hex = address.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0')).reverse().join('').toUpperCase();
  const table = await readFile('/proc/net/tcp', 'utf8');
  return table.split('\n').filter((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[2]?.startsWith(`${hex}:`) === true && fields[3] === '02';
  }).length;
}

async function eventually(check: () => Promise<boolean>, withinMs = 500): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}

async function listen(host: string, port = 0): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.end('up\n');
  });
  server.listen(port, host);
  await once(server, 'listening');
  return server;
}

function portOf(server: { address(): AddressInfo | string | null }): number {
  return (server.address() as AddressInfo).port;
}

if (insideLoopbackNamespace(import.meta.url, [SILENT_NET])) {
  describe('dial', () => {
    let dns: TestDnsServer;
    let working: Server;
    let closedPort: number;
    const guard = new AddressGuard([
      { name: 'test-loopback', cidr: '127.0.0.0/8' },
      { name: 'test-loopback-v6', cidr: '::1/128' },
      { name: 'silent-net', cidr: '198.51.100.0/24' },
    ]);
    const vet = (target: string): Promise<VettedDestination> =>
      resolveAndVet(parseConnectTarget(target), { addressGuard: guard, resolver: new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 }) });

    before(async () => {
      working = await listen('127.0.0.3');
      const closed = await listen('127.0.0.1');
      closedPort = portOf(closed);
      closed.close();
      dns = await startDnsServer({
        'refused-then-working.test': { A: ['127.0.0.2', '127.0.0.3'] },
        'silent-then-working.test': { A: ['198.51.100.7', '127.0.0.3'] },
        'silent.test': { A: ['198.51.100.8', '198.51.100.9'] },
        'dual-stack.test': { A: ['127.0.0.1'], AAAA: ['::1'] },
      });
    });

    after(async () => {
      working.close();
      await dns.close();
    });

    test('refuses a destination that did not come from resolveAndVet, even one cast to the type', async () => {
      const vetted = await vet('127.0.0.1:80');
      const forged = { ...vetted, addresses: [{ address: '169.254.169.254', family: 4 }] } as unknown as VettedDestination;
      await assert.rejects(dial(forged, { timeoutMs: 1_000 }), (error: unknown) => isSluiceError(error) && error.code === 'INTERNAL');
    });

    test('maps a refused port to UPSTREAM_REFUSED without waiting', async () => {
      const started = performance.now();
      await assert.rejects(dial(await vet(`127.0.0.1:${closedPort}`), { timeoutMs: 30_000 }), (error: unknown) => {
        assert.ok(isSluiceError(error));
        assert.equal(error.code, 'UPSTREAM_REFUSED');
        assert.equal(error.status, 502);
        return true;
      });
      // Far below the 30 s timeout however busy the machine: the refusal itself ended the dial.
      assert.ok(performance.now() - started < 10_000);
    });

    test('falls back from a refused first address to a working second one at once', async () => {
      const vetted = await vet(`refused-then-working.test:${portOf(working)}`);
      // A stagger longer than the whole dial: only the refusal itself can start the second attempt.
      const dialled = await dial(vetted, { timeoutMs: 5_000, attemptDelayMs: 60_000 });
      dialled.socket.destroy();
      assert.equal(dialled.address, '127.0.0.3');
    });

    test('tries IPv6 first and falls back to IPv4 when the IPv6 port is closed', async (t) => {
      const v6 = await listen('::1');
      const port = portOf(v6);
      const v4 = await listen('127.0.0.1', port).catch(() => undefined);
      t.after(() => {
        v6.close();
        v4?.close();
      });
      assert.ok(v4 !== undefined, 'the same port was not free on 127.0.0.1');
      const both = await dial(await vet(`dual-stack.test:${port}`), { timeoutMs: 2_000 });
      both.socket.destroy();
      assert.equal(both.address, '::1');
      v6.close();
      await once(v6, 'close');
      const fallback = await dial(await vet(`dual-stack.test:${port}`), { timeoutMs: 2_000 });
      fallback.socket.destroy();
      assert.equal(fallback.address, '127.0.0.1');
    });

    test('starts the next address after the attempt delay when the first stays silent, and destroys the loser', async () => {
      const vetted = await vet(`silent-then-working.test:${portOf(working)}`);
      const dialled = await dial(vetted, { timeoutMs: 5_000 });
      dialled.socket.destroy();
      assert.equal(dialled.address, '127.0.0.3');
      // Not before the 250 ms delay; only the delay can start it, as the first address never answers.
      assert.ok(dialled.connectMs >= 240, `took ${dialled.connectMs} ms`);
      assert.ok(await eventually(async () => (await synSentTo('198.51.100.7')) === 0), 'losing attempt still open');
    });

    test('gives UPSTREAM_TIMEOUT when no address answers, leaving no attempt behind', async () => {
      const vetted = await vet('silent.test:443');
      const started = performance.now();
      const pending = dial(vetted, { timeoutMs: 600 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      // the probe sees the live attempt, so its later zero means the attempt really was destroyed
      assert.equal(await synSentTo('198.51.100.8'), 1);
      await assert.rejects(pending, (error: unknown) => {
        assert.ok(isSluiceError(error));
        assert.equal(error.code, 'UPSTREAM_TIMEOUT');
        assert.equal(error.status, 504);
        // The one overall timer ended it, after the stagger had started the second address too.
        assert.match(error.message, /via 198\.51\.100\.[89], 198\.51\.100\.[89] after 600 ms$/);
        return true;
      });
      // Never early; and the kernel's own SYN retries (minutes) cannot be what ended it.
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 590 && elapsed < 10_000, `took ${elapsed} ms`);
      for (const address of ['198.51.100.8', '198.51.100.9']) {
        assert.ok(await eventually(async () => (await synSentTo(address)) === 0), `${address} attempt still open`);
      }
    });

    test('stops every attempt when the caller aborts', async () => {
      const vetted = await vet('silent.test:443');
      const controller = new AbortController();
      const reason = new Error('client went away');
      setTimeout(() => controller.abort(reason), 50);
      await assert.rejects(dial(vetted, { timeoutMs: 5_000, signal: controller.signal }), (error: unknown) => error === reason);
      assert.ok(await eventually(async () => (await synSentTo('198.51.100.8')) === 0));
    });
  });

  describe('connectorFor', () => {
    let dns: TestDnsServer;
    let dir: string;
    const guard = new AddressGuard([{ name: 'test-loopback', cidr: '127.0.0.0/8' }]);
    const vet = (target: string): Promise<VettedDestination> =>
      resolveAndVet(parseConnectTarget(target), { addressGuard: guard, resolver: new ServerResolver({ servers: [dns.server], timeoutMs: 500, tries: 1 }) });

    before(async () => {
      dns = await startDnsServer({ 'origin.test': { A: ['127.0.0.4'] }, 'secure.test': { A: ['127.0.0.5'] } });
      dir = await mkdtemp(join(tmpdir(), 'sluice-connector-'));
    });

    after(async () => {
      await dns.close();
      await rm(dir, { recursive: true, force: true });
    });

    test('lets an undici Pool reach its vetted destination over plain HTTP', async (t) => {
      const origin = createHttpServer((_request, response) => response.end('plain ok'));
      origin.listen(0, '127.0.0.4');
      await once(origin, 'listening');
      const port = portOf(origin);
      const pool = new Pool(`http://origin.test:${port}`, { connect: connectorFor(await vet(`origin.test:${port}`), { timeoutMs: 2_000 }) });
      t.after(async () => {
        await pool.close();
        origin.close();
      });
      const response = await pool.request({ path: '/', method: 'GET' });
      assert.equal(response.statusCode, 200);
      assert.equal(await response.body.text(), 'plain ok');
    });

    test('refuses to connect a pool to any destination other than the vetted one', async (t) => {
      const vetted = await vet('origin.test:8080');
      const pool = new Pool('http://elsewhere.test:8080', { connect: connectorFor(vetted, { timeoutMs: 2_000 }) });
      t.after(() => pool.destroy());
      await assert.rejects(pool.request({ path: '/', method: 'GET' }), (error: unknown) => isSluiceError(error) && error.code === 'INTERNAL');
    });

    test('originates TLS with the destination name as SNI and checks the certificate against it', async (t) => {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=secure.test', '-addext', 'subjectAltName=DNS:secure.test']);
      const pem = await readFile(cert);
      let sni: string | undefined;
      const origin = createHttpsServer({ key: await readFile(key), cert: pem }, (request, response) => {
        sni = (request.socket as TLSSocket).servername || undefined;
        response.end('tls ok');
      });
      origin.listen(0, '127.0.0.5');
      await once(origin, 'listening');
      const port = portOf(origin);
      const vetted = await vet(`secure.test:${port}`);
      const good = new Pool(`https://secure.test:${port}`, { connect: connectorFor(vetted, { timeoutMs: 2_000, tls: { servername: 'secure.test', ca: pem } }) });
      const untrusted = new Pool(`https://secure.test:${port}`, { connect: connectorFor(vetted, { timeoutMs: 2_000, tls: { servername: 'secure.test' } }) });
      t.after(async () => {
        await good.close();
        await untrusted.destroy();
        origin.close();
      });
      const response = await good.request({ path: '/', method: 'GET' });
      assert.equal(await response.body.text(), 'tls ok');
      assert.equal(sni, 'secure.test');
      await assert.rejects(untrusted.request({ path: '/', method: 'GET' }), (error: unknown) => errorCodeFor(error) === 'UPSTREAM_TLS');
    });
  });

  describe('errorCodeFor', () => {
    test('maps socket errnos through the one table', () => {
      const cases: readonly (readonly [string, string])[] = [
        ['ECONNREFUSED', 'UPSTREAM_REFUSED'],
        ['ECONNRESET', 'UPSTREAM_RESET'],
        ['ETIMEDOUT', 'UPSTREAM_TIMEOUT'],
        ['EHOSTUNREACH', 'UPSTREAM_UNREACHABLE'],
        ['ENETUNREACH', 'UPSTREAM_UNREACHABLE'],
        ['ENOTFOUND', 'DNS_FAILURE'],
        ['ENODATA', 'DNS_FAILURE'],
        ['ESOMETHINGNEW', 'UPSTREAM_UNREACHABLE'],
      ];
      for (const [code, expected] of cases) assert.equal(errorCodeFor(Object.assign(new Error(code), { code })), expected, code);
    });

    test('maps undici errors, including socket errors wrapped in a cause', () => {
      assert.equal(errorCodeFor(new undiciErrors.ConnectTimeoutError()), 'UPSTREAM_TIMEOUT');
      assert.equal(errorCodeFor(new undiciErrors.HeadersTimeoutError()), 'UPSTREAM_TIMEOUT');
      assert.equal(errorCodeFor(new undiciErrors.BodyTimeoutError()), 'UPSTREAM_TIMEOUT');
      assert.equal(errorCodeFor(new TypeError('fetch failed', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) })), 'UPSTREAM_REFUSED');
      assert.equal(errorCodeFor(Object.assign(new Error('bad response'), { code: 'HPE_INVALID_CONSTANT' })), 'UPSTREAM_PROTOCOL');
    });

    test('keeps a SluiceError code and calls anything unknown internal', () => {
      assert.equal(errorCodeFor(new SluiceError('UPSTREAM_TIMEOUT')), 'UPSTREAM_TIMEOUT');
      assert.equal(errorCodeFor(new Error('no code')), 'INTERNAL');
      assert.equal(errorCodeFor('a string'), 'INTERNAL');
    });
  });
}
