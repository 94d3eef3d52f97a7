// The CONNECT handshake with a parent proxy, against scripted parents on 127.0.0.1: what Sluice
// sends, bytes after the answer kept for the tunnel, and each way a parent can fail to open one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { AddressGuard, dial, loadParentProxies, resolveAndVet, SystemResolver, type VettedDestination } from '../src/connect/index.js';
import { isSluiceError } from '../src/errors.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';

/** A parent that records what it is sent and answers with `reply` once it has a whole request head. */
async function scriptedParent(t: { after(fn: () => Promise<void>): void }, reply: (socket: Socket) => void): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const open = new Set<Socket>();
  const server: Server = createServer((socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (!received.includes('\r\n\r\n') || heads.length > 0) return;
      heads.push(received);
      reply(socket);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const socket of open) socket.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, heads };
}

async function throughParent(port: number, target: string, credentials?: string): Promise<VettedDestination> {
  const parents = await loadParentProxies(
    { upstream_proxy: [{ match: ['*'], proxy: `http://127.0.0.1:${port}`, ...(credentials === undefined ? {} : { credentials_env: 'PARENT' }) }], no_proxy: [] },
    { baseDir: '/', env: credentials === undefined ? {} : { PARENT: credentials } },
  );
  const guard = new AddressGuard([{ name: 'parent', cidr: '127.0.0.1/32' }]);
  return resolveAndVet(parseConnectTarget(target), { addressGuard: guard, resolver: new SystemResolver(), parents });
}

function failsWith(code: string, detail?: RegExp): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(isSluiceError(error), String(error));
    assert.equal(error.code, code);
    if (detail !== undefined) assert.match(error.message, detail);
    return true;
  };
}

describe('CONNECT through a parent proxy', () => {
  test('asks for the authority with Basic credentials (an IP literal vetted first), and hands over bytes that followed the answer', async (t) => {
    const parent = await scriptedParent(t, (socket) => socket.write('HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\nSSH-2.0-banner\r\n'));
    const vetted = await throughParent(parent.port, '[2606:2800:21f::1]:22', 'egress:pw');
    const { socket, address, port } = await dial(vetted, { timeoutMs: 2_000 });
    t.after(() => socket.destroy());
    assert.deepEqual([address, port], ['127.0.0.1', parent.port]);
    assert.equal(parent.heads[0], `CONNECT [2606:2800:21f::1]:22 HTTP/1.1\r\nHost: [2606:2800:21f::1]:22\r\nProxy-Authorization: Basic ${Buffer.from('egress:pw').toString('base64')}\r\n\r\n`);
    const [first] = (await once(socket, 'data')) as [Buffer];
    assert.equal(first.toString(), 'SSH-2.0-banner\r\n');
  });

  test('sends no Proxy-Authorization when the parent has no credentials configured', async (t) => {
    const parent = await scriptedParent(t, (socket) => socket.write('HTTP/1.0 200 OK\r\n\r\n'));
    const { socket } = await dial(await throughParent(parent.port, 'example.test:443'), { timeoutMs: 2_000 });
    socket.destroy();
    assert.equal(parent.heads[0], 'CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n');
  });

  test('maps each way a parent can refuse or fail to an error code', async (t) => {
    const cases: [string, (socket: Socket) => void, string, RegExp][] = [
      ['407', (socket) => socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n'), 'PARENT_PROXY_AUTH', /answered 407/],
      ['403', (socket) => socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'), 'PARENT_PROXY_REFUSED', /answered 403 to CONNECT example\.test:443/],
      ['not HTTP', (socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'), 'UPSTREAM_PROTOCOL', /did not answer CONNECT with HTTP/],
      ['endless head', (socket) => socket.write(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`), 'UPSTREAM_PROTOCOL', /over 16384 bytes/],
      ['closed', (socket) => socket.end(), 'UPSTREAM_RESET', /closed before answering/],
    ];
    for (const [name, reply, code, detail] of cases) {
      const parent = await scriptedParent(t, reply);
      await assert.rejects(dial(await throughParent(parent.port, 'example.test:443'), { timeoutMs: 2_000 }), failsWith(code, detail), name);
    }
  });

  test('a parent that accepts but never answers fails the dial at its deadline', async (t) => {
    const parent = await scriptedParent(t, () => undefined);
    await assert.rejects(dial(await throughParent(parent.port, 'example.test:443'), { timeoutMs: 300 }), failsWith('UPSTREAM_TIMEOUT', /did not answer CONNECT example\.test:443/));
  });

  test('an abort while waiting for the answer rejects with its reason', async (t) => {
    const parent = await scriptedParent(t, () => undefined);
    const controller = new AbortController();
    const dialling = dial(await throughParent(parent.port, 'example.test:443'), { timeoutMs: 5_000, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(new Error('client went away'));
    await assert.rejects(dialling, /client went away/);
  });
});
