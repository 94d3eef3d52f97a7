// A socket dialled for a relay is read through its UpstreamReader: bytes read before the relay
// starts come first, a large download through a slow reader arrives intact, and the end passes on.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { AddressGuard, dial, resolveAndVet, SystemResolver, upstreamReaderOf } from '../src/connect/index.js';
import { parseConnectTarget } from '../src/ingress/request-target.js';

const guard = new AddressGuard([{ name: 'test-origins', cidr: '127.0.0.0/8' }]);

/** A server that writes `payload` to each connection, then ends it. */
async function sendingServer(payload: Buffer): Promise<Server> {
  const server = createServer((socket) => socket.end(payload));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A connected pair on loopback: `near` is written to, `far` is where the bytes come out. */
async function socketPair(): Promise<{ near: Socket; far: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const near = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [far] = (await accepted) as [Socket];
  await once(near, 'connect');
  return { near, far, close: () => (near.destroy(), far.destroy(), server.close()) };
}

async function dialForRelay(server: Server): Promise<Socket> {
  const vetted = await resolveAndVet(parseConnectTarget(`127.0.0.1:${(server.address() as AddressInfo).port}`), { addressGuard: guard, resolver: new SystemResolver() });
  return (await dial(vetted, { timeoutMs: 5_000, forRelay: true })).socket;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

test('32 MiB through a sink that reads slowly arrive intact and in order, and the end is passed on', async () => {
  const payload = randomBytes(32 * 1024 * 1024);
  const server = await sendingServer(payload);
  const upstream = await dialForRelay(server);
  const reader = upstreamReaderOf(upstream);
  assert.ok(reader !== undefined, 'a socket dialled for a relay has a reader');
  const pair = await socketPair();
  const received: Buffer[] = [];
  let paused = 0;
  // Reading in bursts keeps the sink's buffer full, so the reader has to pause and resume.
  pair.far.on('data', (chunk: Buffer) => {
    received.push(chunk);
    if (received.length % 64 === 0) {
      paused += 1;
      pair.far.pause();
      setImmediate(() => pair.far.resume());
    }
  });
  const ended = once(pair.far, 'end');
  reader.forwardTo(pair.near);
  await ended;
  const got = Buffer.concat(received);
  assert.equal(got.length, payload.length);
  assert.equal(sha256(got), sha256(payload), 'no chunk was overwritten by a later read');
  assert.ok(paused > 0);
  pair.close();
  upstream.destroy();
  server.close();
});

test('bytes read through the stream before the relay starts are forwarded first', async () => {
  const payload = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\nfirst bytes of the tunnel, then the rest');
  const server = await sendingServer(payload);
  const upstream = await dialForRelay(server);
  // Let the answer arrive and sit in the stream, as it does while a parent's CONNECT answer is parsed.
  await once(upstream, 'readable');
  const head = upstream.read(payload.indexOf('\r\n\r\n') + 4) as Buffer;
  assert.equal(head.toString(), 'HTTP/1.1 200 Connection established\r\n\r\n');
  const pair = await socketPair();
  const received: Buffer[] = [];
  pair.far.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = once(pair.far, 'end');
  upstreamReaderOf(upstream)?.forwardTo(pair.near);
  await ended;
  assert.equal(Buffer.concat(received).toString(), 'first bytes of the tunnel, then the rest');
  pair.close();
  upstream.destroy();
  server.close();
});

test('a socket dialled for the forward pools has no reader and reads through its stream', async () => {
  const server = await sendingServer(Buffer.from('plain'));
  const vetted = await resolveAndVet(parseConnectTarget(`127.0.0.1:${(server.address() as AddressInfo).port}`), { addressGuard: guard, resolver: new SystemResolver() });
  const { socket } = await dial(vetted, { timeoutMs: 5_000 });
  assert.equal(upstreamReaderOf(socket), undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'plain');
  socket.destroy();
  server.close();
});
