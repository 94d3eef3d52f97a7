// The proxy refuses what RFC 9112 calls ambiguous, never forwarding it: framing conflicts, bad
// versions, control characters, a second Host, malformed CONNECT targets; limits answer cleanly.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startHttpOrigin } from './support/origins.js';
import { suiteFixture } from './support/suite-fixture.js';
import { rawExchange } from './support/raw-http.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';

describe('strict request parsing', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sluice = keep(await startSluice({ config: `${ALLOW_LOOPBACK}\nlimits:\n  max_header_bytes: 2048\n  header_timeout_ms: 400\n  max_connections: 20\n` }));
    return { origin, sluice, port: sluice.proxyPort, target: `http://127.0.0.1:${origin.port}` };
  });

  const refused: { name: string; request: string; status: number; code: string }[] = [
    { name: 'Content-Length with Transfer-Encoding', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, code: 'BAD_FRAMING' },
    { name: 'two Content-Length headers', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', status: 400, code: 'BAD_FRAMING' },
    { name: 'two equal Content-Length headers', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', status: 400, code: 'BAD_FRAMING' },
    { name: 'a non-numeric Content-Length', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\nhello', status: 400, code: 'BAD_FRAMING' },
    { name: 'a signed Content-Length', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello', status: 400, code: 'BAD_FRAMING' },
    { name: 'a Transfer-Encoding that is not chunked', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n', status: 400, code: 'BAD_FRAMING' },
    { name: 'chunked not last', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', status: 400, code: 'BAD_FRAMING' },
    { name: 'Transfer-Encoding in HTTP/1.0', request: 'POST {T}/a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, code: 'BAD_FRAMING' },
    { name: 'a malformed chunk size', request: 'POST {T}/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', status: 400, code: 'BAD_FRAMING' },
    { name: 'an HTTP/2.0 request line', request: 'GET {T}/a HTTP/2.0\r\nHost: h\r\n\r\n', status: 0, code: '' },
    { name: 'an HTTP/0.9-style request line', request: 'GET {T}/a\r\n\r\n', status: 505, code: 'BAD_HTTP_VERSION' },
    { name: 'an HTTP/3.0 request line', request: 'GET {T}/a HTTP/3.0\r\nHost: h\r\n\r\n', status: 505, code: 'BAD_HTTP_VERSION' },
    { name: 'a request line ending in a bare LF', request: 'GET {T}/a HTTP/1.1\nHost: h\r\n\r\n', status: 400, code: 'BAD_REQUEST' },
    { name: 'a request line ending in CR CR LF', request: 'GET {T}/a HTTP/1.1\r\r\nHost: h\r\n\r\n', status: 400, code: 'BAD_REQUEST' },
    { name: 'a header line ending in a bare LF', request: 'GET {T}/a HTTP/1.1\r\nHost: h\n\r\n', status: 400, code: 'BAD_REQUEST' },
    { name: 'a second Host header', request: 'GET {T}/a HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', status: 400, code: 'DUPLICATE_HOST' },
    { name: 'a control character in the target', request: 'GET {T}/a\u0001b HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: '' },
    { name: 'userinfo in an absolute URI', request: 'GET http://user:pw@127.0.0.1/ HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'BAD_HOST' },
    { name: 'a port out of range', request: 'GET http://127.0.0.1:70000/ HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'BAD_PORT' },
    { name: 'an empty label', request: 'GET http://a..example/ HTTP/1.1\r\nHost: h\r\n\r\n', status: 400, code: 'BAD_HOST' },
    { name: 'CONNECT without a port', request: 'CONNECT example.org HTTP/1.1\r\nHost: example.org\r\n\r\n', status: 400, code: 'BAD_TARGET' },
    { name: 'CONNECT with a path', request: 'CONNECT example.org:443/x HTTP/1.1\r\nHost: example.org\r\n\r\n', status: 400, code: 'BAD_PORT' },
    { name: 'CONNECT with port 0', request: 'CONNECT example.org:0 HTTP/1.1\r\nHost: example.org\r\n\r\n', status: 400, code: 'BAD_PORT' },
    { name: 'CONNECT with userinfo', request: 'CONNECT user@example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n', status: 400, code: 'BAD_HOST' },
    { name: 'CONNECT to an unbracketed IPv6 literal', request: 'CONNECT ::1:443 HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, code: 'BAD_TARGET' },
  ];

  for (const entry of refused) {
    test(`refuses ${entry.name} and never forwards it`, async () => {
      const { origin, port, target } = fixture();
      const before = origin.requests.length;
      const reply = await rawExchange(port, [entry.request.replace('{T}', target)]);
      if (entry.status !== 0) assert.equal(reply.status, entry.status, reply.text);
      else assert.ok(reply.status >= 400 || reply.status === 0, reply.text);
      if (entry.code !== '') assert.match(reply.text, new RegExp(entry.code));
      assert.ok(reply.closed, 'the connection is closed after a refusal');
      assert.equal(origin.requests.length, before, 'nothing reached the origin');
    });
  }

  test('a bare-LF request line pipelined behind a good request is a 400 too, never forwarded', async () => {
    const { origin, port, target } = fixture();
    const reply = await rawExchange(port, [`GET ${target}/first HTTP/1.1\r\nHost: h\r\n\r\nGET ${target}/second HTTP/1.1\nHost: h\n\n`]);
    assert.match(reply.text, /^HTTP\/1\.1 400 .*\r\n[^]*"code":"BAD_REQUEST"/m, reply.text);
    assert.doesNotMatch(reply.text, /HTTP\/1\.1 505/);
    assert.ok(!origin.requests.some((request) => request.url === '/second'));
  });

  test('headers over the size limit get 431', async () => {
    const { port, target } = fixture();
    const reply = await rawExchange(port, [`GET ${target}/ HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`]);
    assert.equal(reply.status, 431);
  });

  test('a client that never finishes its headers (slowloris) gets 408 and is disconnected', async () => {
    const { port, target } = fixture();
    const reply = await rawExchange(port, [`GET ${target}/ HTTP/1.1\r\n`, 'X-Slow: 1\r\n'], { pauseMs: 200, waitMs: 3000 });
    assert.equal(reply.status, 408);
    assert.ok(reply.closed);
  });

  test('connections over the limit get a clean 503, and the proxy keeps serving', async () => {
    const { port, target } = fixture();
    const { connect } = await import('node:net');
    const held = await Promise.all(
      Array.from({ length: 20 }, () => new Promise<import('node:net').Socket>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
      })),
    );
    try {
      const reply = await rawExchange(port, [`GET ${target}/ HTTP/1.1\r\nHost: h\r\n\r\n`]);
      assert.equal(reply.status, 503);
      assert.match(reply.text, /TOO_MANY_CONNECTIONS/);
    } finally {
      for (const socket of held) socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = await rawExchange(port, [`GET ${target}/ok HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`]);
    assert.equal(after.status, 200);
  });

  test('every refusal is in the audit chain as a bad_request record', async () => {
    const { sluice, port, target } = fixture();
    await rawExchange(port, [`GET ${target}/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = await sluice.auditRecords();
    assert.ok(lines.some((record) => record.kind === 'bad_request' && record.code === 'DUPLICATE_HOST'));
    assert.ok(lines.some((record) => record.kind === 'bad_request' && record.code === 'BAD_FRAMING'));
  });
});
