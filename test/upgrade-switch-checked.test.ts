// An `Upgrade` request is relayed as raw bytes only once the origin has answered 101 with the
// protocol asked for. An origin that ignores Upgrade gets one ordinary exchange and the connection
// closes, so a request pipelined behind the upgrade can never reach it undecided (a deny rule on
// /admin bypassed through an allowed /public upgrade), on the explicit proxy and on port 80.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { listening, startHttpOrigin, type EchoReport, type Origin } from './support/origins.js';
import { rawExchange } from './support/raw-http.js';
import { ALLOW_LOOPBACK, startSluice, type AuditLine } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';

/**
 * An origin like most: it answers an upgrade request as an ordinary one and keeps reading the
 * connection as HTTP. Node's server would stop parsing after an upgrade request, so the 'upgrade'
 * handler answers and hands the socket (and the bytes that came with the request) back to it.
 */
async function startIgnoringOrigin(): Promise<Origin> {
  const requests: EchoReport[] = [];
  const record = (request: IncomingMessage): void => {
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, rawHeaders: request.rawHeaders, bodyBytes: 0, body: '' });
  };
  const server = createServer((request: IncomingMessage, response) => {
    request.resume();
    request.on('end', () => {
      record(request);
      response.end(`plain answer to ${request.method ?? ''} ${request.url ?? ''}`);
    });
  });
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    record(request);
    // Chunked, so Sluice has to pass on a body framed by the origin.
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nplain\r\n0\r\n\r\n');
    server.emit('connection', socket);
    if (head.length > 0) socket.emit('data', head);
  });
  return listening(server, requests);
}

/** Answers every connection with a 101 to a protocol nobody asked for. */
async function startWrongSwitch(): Promise<{ server: TcpServer; port: number }> {
  const server = createTcpServer((socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nraw-bytes'));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('upgrades switch to raw bytes only when the origin switched', () => {
  const fixture = suiteFixture(async (keep) => {
    const ignoring = keep(await startIgnoringOrigin());
    const switching = keep(await startHttpOrigin());
    const wrong = keep(await startWrongSwitch(), (started) => new Promise((resolve) => started.server.close(resolve)));
    const ports = `[${ignoring.port}, ${switching.port}, ${wrong.port}]`;
    const sluice = keep(await startSluice({
      // A confined uid opens the transparent listeners; no agent is named by uid.
      config: `${ALLOW_LOOPBACK}\nmode: strict\nanonymous: { allow: true }\nguard: { agent_uids: [65533] }\n`,
      listen: { transparent_http: '127.0.0.1:0', transparent_tls: '127.0.0.1:0', dns: '127.0.0.1:0' },
      rules: {
        'paths.yaml': `rules:
  - { id: public, action: allow, hosts: [127.0.0.1], ports: ${ports}, paths: [/public/, /ws] }
  - { id: no-admin, action: deny, hosts: [127.0.0.1], ports: ${ports}, paths: [/admin] }
`,
      },
    }));
    return { ignoring, switching, wrong, sluice, proxyPort: sluice.proxyPort, transparentPort: sluice.sluice.transparentHttpPort ?? 0 };
  });

  async function decisions(): Promise<AuditLine[]> {
    return (await fixture().sluice.auditRecords()).filter((record) => record.kind === 'decision');
  }

  /** The upgrade request for /public/x and, in the same write, a POST /admin/delete behind it. */
  function smuggling(port: number, absolute: boolean): string {
    const authority = `127.0.0.1:${port}`;
    const target = absolute ? `http://${authority}/public/x` : '/public/x';
    return (
      `GET ${target} HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n` +
      `POST /admin/delete HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: 0\r\n\r\n`
    );
  }

  for (const listener of ['explicit proxy', 'transparent port 80'] as const) {
    test(`${listener}: a request pipelined behind an upgrade the origin ignores never reaches it`, async () => {
      const { ignoring, proxyPort, transparentPort } = fixture();
      const before = ignoring.requests.length;
      const port = listener === 'explicit proxy' ? proxyPort : transparentPort;
      const reply = await rawExchange(port, [smuggling(ignoring.port, listener === 'explicit proxy')], { waitMs: 3000 });
      const seen = ignoring.requests.slice(before).map((request) => request.url);
      assert.deepEqual(seen, ['/public/x'], 'the origin saw the upgrade request only');
      // One ordinary response, its chunked body passed on whole, then the connection closes.
      assert.equal(reply.closed, true, 'the connection is closed after the one response');
      assert.equal(reply.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, reply.text);
      assert.match(reply.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(reply.text, /\r\nConnection: close\r\n/i);
      assert.match(reply.text, /\r\nSluice-Decision: allow; reason=rule_allow; rule=public;/);
      assert.ok(reply.text.endsWith('\r\n\r\nplain'), reply.text);
      assert.doesNotMatch(reply.text, /Transfer-Encoding/i, 'the body is delimited by the close, not re-chunked');
      // No silent gap: everything the origin saw was decided and audited.
      const audited = await decisions();
      for (const path of seen) assert.ok(audited.some((record) => record.path === path && record.verdict === 'allow'), `${path} has an allow record`);
    });

    test(`${listener}: a real 101 switches to raw bytes both ways, bytes sent with the handshake included`, async () => {
      const { switching, proxyPort, transparentPort } = fixture();
      const port = listener === 'explicit proxy' ? proxyPort : transparentPort;
      const authority = `127.0.0.1:${switching.port}`;
      const target = listener === 'explicit proxy' ? `http://${authority}/ws` : '/ws';
      const reply = await rawExchange(port, [`GET ${target} HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nfirst-frame`, 'second-frame'], { pauseMs: 200, waitMs: 800 });
      assert.match(reply.text, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
      assert.match(reply.text, /\r\nUpgrade: websocket\r\n/);
      assert.match(reply.text, /\r\nSluice-Decision: allow; reason=rule_allow; rule=public;/);
      assert.ok(reply.text.endsWith('\r\n\r\nfirst-framesecond-frame'), reply.text);
    });
  }

  test('an origin that switches to a protocol the agent did not offer is refused UPSTREAM_PROTOCOL', async () => {
    const { wrong, proxyPort } = fixture();
    const authority = `127.0.0.1:${wrong.port}`;
    const reply = await rawExchange(proxyPort, [`GET http://${authority}/ws HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`]);
    assert.equal(reply.status, 502);
    assert.match(reply.text, /"code":"UPSTREAM_PROTOCOL"/);
    assert.doesNotMatch(reply.text, /raw-bytes/);
  });

  test('an upgrade request with a body is refused BAD_FRAMING before anything is dialled', async () => {
    const { switching, proxyPort } = fixture();
    const authority = `127.0.0.1:${switching.port}`;
    const before = switching.requests.length;
    const reply = await rawExchange(proxyPort, [`GET http://${authority}/ws HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello`]);
    assert.equal(reply.status, 400);
    assert.match(reply.text, /"code":"BAD_FRAMING"/);
    assert.equal(switching.requests.length, before);
  });
});
