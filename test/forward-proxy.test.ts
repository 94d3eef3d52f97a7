// The explicit proxy carries real clients (curl, undici ProxyAgent, fetch) to HTTP and HTTPS
// origins unchanged: CONNECT, absolute-form, keep-alive, streaming bodies, 100-continue, upgrades.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { EnvHttpProxyAgent, ProxyAgent, fetch as undiciFetch, request } from 'undici';
import { curl } from './support/curl.js';
import { startHttpOrigin, startHttpsOrigin, type EchoReport } from './support/origins.js';
import { rawExchange } from './support/raw-http.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';

const DENY_RULES = `rules:
  - id: no-forbidden-port
    action: deny
    hosts: [localhost]
    ports: [1, 2]
`;

describe('forward proxy with real clients', () => {
  const fixture = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(), (made) => made.remove());
    const http = keep(await startHttpOrigin());
    const https = keep(await startHttpsOrigin(ca));
    const sluice = keep(await startSluice({ config: ALLOW_LOOPBACK, rules: { 'deny.yaml': DENY_RULES } }));
    return { ca, http, https, sluice, proxyPort: sluice.proxyPort };
  });

  test('curl fetches plain HTTP through the proxy with Host rewritten and proxy headers removed', async () => {
    const { http, sluice } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '-U', 'someone:secret-token-value', '-H', 'Connection: x-private', '-H', 'X-Private: 1', `http://127.0.0.1:${http.port}/hello?q=1`]);
    assert.equal(result.status, 407, 'an unknown proxy token is refused, never downgraded to anonymous');
    const ok = await curl(['-x', sluice.proxyUrl, '-H', 'Connection: x-private', '-H', 'X-Private: 1', `http://127.0.0.1:${http.port}/hello?q=1`]);
    assert.equal(ok.status, 200);
    const report = JSON.parse(ok.body) as EchoReport;
    assert.equal(report.url, '/hello?q=1');
    assert.equal(report.headers.host, `127.0.0.1:${http.port}`);
    assert.equal(report.headers['x-private'], undefined, 'headers named in Connection are hop-by-hop');
    assert.equal(report.headers['proxy-connection'], undefined);
    assert.match(ok.headers, /sluice-decision: learn; reason=learn_unmatched/i);
    assert.doesNotMatch(ok.headers, /x-drop-me/i, 'response headers named in Connection are removed');
  });

  test('curl tunnels HTTPS with CONNECT and real TLS to the origin', async () => {
    const { ca, https, sluice } = fixture();
    const result = await curl(['-x', sluice.proxyUrl, '--cacert', ca.caFile, `https://localhost:${https.port}/secure`]);
    assert.equal(result.status, 200, result.stderr);
    assert.equal((JSON.parse(result.body) as EchoReport).url, '/secure');
  });

  test('undici ProxyAgent works for http and https origins', async () => {
    const { ca, http, https, sluice } = fixture();
    const agent = new ProxyAgent({ uri: sluice.proxyUrl, requestTls: { ca: ca.caCert } });
    try {
      const plain = await request(`http://127.0.0.1:${http.port}/undici`, { dispatcher: agent });
      assert.equal(plain.statusCode, 200);
      await plain.body.json();
      const secure = await request(`https://localhost:${https.port}/undici-tls`, { dispatcher: agent });
      assert.equal(secure.statusCode, 200);
      assert.equal(((await secure.body.json()) as EchoReport).url, '/undici-tls');
    } finally {
      await agent.close();
    }
  });

  test('fetch through EnvHttpProxyAgent, and Node global fetch with a proxy dispatcher', async () => {
    const { ca, http, https, sluice } = fixture();
    const env = new EnvHttpProxyAgent({ httpProxy: sluice.proxyUrl, httpsProxy: sluice.proxyUrl, noProxy: '', requestTls: { ca: ca.caCert } });
    try {
      const response = await undiciFetch(`https://localhost:${https.port}/fetch`, { dispatcher: env });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as EchoReport).url, '/fetch');
    } finally {
      await env.close();
    }
    const agent = new ProxyAgent(sluice.proxyUrl);
    try {
      // Node's own fetch accepts an undici dispatcher; its bundled undici types differ from the package's.
      const init = { dispatcher: agent } as unknown as RequestInit;
      const response = await fetch(`http://127.0.0.1:${http.port}/global-fetch`, init);
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as EchoReport).url, '/global-fetch');
    } finally {
      await agent.close();
    }
  });

  test('keep-alive requests on one client connection reuse one upstream connection', async () => {
    const { http, sluice } = fixture();
    const agent = new ProxyAgent({ uri: sluice.proxyUrl });
    const before = http.requests.length;
    const sockets = new Set<string>();
    http.server.on('connection', (socket) => sockets.add(`${socket.remotePort}`));
    try {
      for (let i = 0; i < 5; i++) {
        const response = await request(`http://127.0.0.1:${http.port}/ka/${i}`, { dispatcher: agent });
        await response.body.text();
      }
    } finally {
      await agent.close();
    }
    assert.equal(http.requests.length - before, 5);
    assert.ok(sockets.size < 5, `expected pooled upstream connections to be reused, saw ${sockets.size} for 5 requests`);
  });

  test('streams a large upload and download without changing a byte', async () => {
    const { http, sluice } = fixture();
    const agent = new ProxyAgent({ uri: sluice.proxyUrl });
    try {
      const size = 8 * 1024 * 1024;
      const body = Readable.from((function* chunks(): Generator<Buffer> {
        for (let sent = 0; sent < size; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, 0x62);
      })());
      const upload = await request(`http://127.0.0.1:${http.port}/upload`, { method: 'POST', body, dispatcher: agent });
      assert.equal(((await upload.body.json()) as EchoReport).bodyBytes, size);
      const download = await request(`http://127.0.0.1:${http.port}/bytes/${size}`, { dispatcher: agent });
      let received = 0;
      for await (const chunk of download.body) received += (chunk as Buffer).length;
      assert.equal(received, size);
    } finally {
      await agent.close();
    }
  });

  test('Expect: 100-continue is answered only after the decision, then the body flows', async () => {
    const { http, sluice, proxyPort } = fixture();
    const allowed = await rawExchange(proxyPort, [
      `POST http://127.0.0.1:${http.port}/continue HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
    ], { waitMs: 1000 });
    assert.match(allowed.text, /^HTTP\/1\.1 100 Continue/);
    const denied = await rawExchange(proxyPort, [
      `POST http://localhost:1/continue HTTP/1.1\r\nHost: localhost:1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`,
    ]);
    assert.equal(denied.status, 403, 'a denied request never gets 100 Continue');
    assert.doesNotMatch(denied.text, /100 Continue/);
    const full = await curl(['-x', sluice.proxyUrl, '-H', 'Expect: 100-continue', '--data-binary', 'hello', `http://127.0.0.1:${http.port}/continue`]);
    assert.equal(full.status, 200);
    assert.equal((JSON.parse(full.body) as EchoReport).body, 'hello');
    assert.equal((JSON.parse(full.body) as EchoReport).headers.expect, undefined);
  });

  test('a WebSocket upgrade over plain HTTP is relayed both ways', async () => {
    const { http, proxyPort } = fixture();
    const socket = connect(proxyPort, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET http://127.0.0.1:${http.port}/ws HTTP/1.1\r\nHost: 127.0.0.1:${http.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    await waitFor(() => Buffer.concat(received).toString().includes('\r\n\r\n'));
    assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 101/);
    socket.write('ping-frame');
    await waitFor(() => Buffer.concat(received).toString().endsWith('ping-frame'));
    socket.destroy();
    const upgrade = http.requests.find((entry) => entry.url === '/ws');
    assert.equal(upgrade?.headers.upgrade, 'websocket');
  });

  test('an origin-form request to the proxy port is a 400, audited', async () => {
    const { proxyPort } = fixture();
    const reply = await rawExchange(proxyPort, ['GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n']);
    assert.equal(reply.status, 400);
    assert.match(reply.text, /ORIGIN_FORM/);
    assert.match(reply.text, /Sluice-Decision: error; reason=origin_form/);
  });

  test('upstream refusals are 502 with the JSON error shape', async () => {
    const { sluice, proxyPort } = fixture();
    const closed = await rawExchange(proxyPort, [`GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n`]);
    assert.equal(closed.status, 502);
    const body = JSON.parse(closed.text.slice(closed.text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'UPSTREAM_REFUSED');
    assert.ok(sluice.logs.some((line) => line.request_id === body.error.request_id), 'the request id in the reply is in the logs');
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
