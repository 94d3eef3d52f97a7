// The local interception CA: `sluice ca export` creates it before Sluice ever ran (key 0600),
// keeps it across runs, refuses half a CA, and its leaves pass a real TLS client's verification.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, createServer } from 'node:tls';
import { LocalCa } from '../src/ingress/tls/local-ca.js';
import { freshDir, runSluice } from './support/cli.js';

test('sluice ca export creates the CA with a 0600 key and prints the same certificate every time', async (t) => {
  const dir = join(await freshDir(t, 'sluice-ca-'), 'state');
  const first = await runSluice(['ca', 'export', '--state-dir', dir]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  assert.match(first.stderr, /created a new CA/);
  assert.equal((await stat(join(dir, 'ca.key'))).mode & 0o777, 0o600);
  assert.equal(first.stdout.trim(), (await readFile(join(dir, 'ca.pem'), 'utf8')).trim());
  const second = await runSluice(['ca', 'export', '--state-dir', dir]);
  assert.equal(second.code, 0);
  assert.equal(second.stdout, first.stdout);
  assert.equal(second.stderr, '');
});

test('a CA with its key missing is refused, not silently replaced', async (t) => {
  const dir = await freshDir(t, 'sluice-ca-');
  await LocalCa.open(dir);
  await rm(join(dir, 'ca.key'));
  const result = await runSluice(['ca', 'export', '--state-dir', dir]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /ca\.key is missing while .*ca\.pem exists/);
});

test('a minted leaf is cached per host and verifies against the CA in a real handshake', async (t) => {
  const dir = await freshDir(t, 'sluice-ca-');
  const minted: number[] = [];
  const { ca } = await LocalCa.open(dir, (seconds) => minted.push(seconds));
  const leaf = ca.leafFor('api.openai.com');
  assert.equal(ca.leafFor('api.openai.com'), leaf);
  assert.equal(minted.length, 1);
  const server = createServer({ key: leaf.key, cert: leaf.cert }, (socket) => socket.end('hello'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  const client = connect({ host: '127.0.0.1', port, servername: 'api.openai.com', ca: ca.certificatePem });
  const [data] = (await once(client, 'data')) as [Buffer];
  assert.equal(data.toString(), 'hello');
  client.destroy();
  const wrongName = connect({ host: '127.0.0.1', port, servername: 'api.anthropic.com', ca: ca.certificatePem });
  const [error] = (await once(wrongName, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});
