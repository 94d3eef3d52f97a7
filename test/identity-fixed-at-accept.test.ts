// An agent must not change the UID it is identified by. The owner of a local client socket is
// asked of the kernel once, when Sluice accepts the connection, from an ESTABLISHED socket with the
// exact address pair; a client that closes or half-closes later keeps its identity, and one whose
// owner cannot be established is refused with IDENTITY_UNAVAILABLE, never handed to root's agent,
// the address's agent or anonymous.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';

const DEV_UID = 1001;

// Runs as the agent's uid: connects, waits `waitMs`, sends the request, then closes its socket
// (`close`) or half-closes it and reads the reply (`end`). Prints the reply, if any, on exit.
const CLIENT = `
const net = require('node:net');
const [port, request, mode, waitMs] = process.argv.slice(1);
const start = () => {
  const socket = net.connect(Number(port), '127.0.0.1', () => setTimeout(() => {
    if (mode === 'close') socket.write(request, () => socket.destroy());
    else socket.end(request);
  }, Number(waitMs)));
  let reply = '';
  socket.on('data', (chunk) => (reply += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => process.stdout.write(reply));
};
// With a go-line on stdin the client waits for it, so the test can hold Sluice's event loop first.
if (process.env.WAIT_FOR_GO === '1') process.stdin.once('data', start); else start();
process.stdout.write('');
`;

interface Decision {
  kind: string;
  request_kind: string;
  agent: string | null;
  via: string | null;
  path: string | null;
  verdict: string;
  reason: string;
}

/** Sends `request` to `port` as DEV_UID and resolves with what the client read. */
function asDev(port: number, request: string, mode: 'close' | 'end', options: { waitMs?: number; holdSluiceMs?: number } = {}): Promise<string> {
  const hold = options.holdSluiceMs;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, String(port), request, mode, String(options.waitMs ?? 0)], {
      uid: DEV_UID,
      gid: DEV_UID,
      env: hold === undefined ? {} : { WAIT_FOR_GO: '1' },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
    child.on('error', reject);
    child.on('close', () => resolve(out));
    if (hold === undefined) {
      child.stdin.end();
      return;
    }
    // Once the client has started, block this process (and the Sluice in it) while the client
    // connects, sends and closes: the kernel completes the handshake, but Sluice accepts late.
    setTimeout(() => {
      child.stdin.end('go\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, hold);
    }, 300);
  });
}

describe('identity is fixed when the connection is accepted', () => {
  let origin: Origin;
  let sluice: RunningSluice;

  before(async () => {
    origin = await startHttpOrigin();
    sluice = await startSluice({
      // Root's agent is the one a TIME_WAIT leftover (uid 0) used to be mistaken for.
      config: `${ALLOW_LOOPBACK}
mode: strict
anonymous: { allow: true }
agents:
  - { name: ops, uids: [0] }
  - { name: dev, uids: [${DEV_UID}] }
`,
      listen: { transparent_http: '127.0.0.1:0', transparent_tls: '127.0.0.1:0', dns: '127.0.0.1:0' },
      rules: {
        'ops.yaml': `rules:
  - { id: ops-origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], agents: [ops] }
  - { id: anyone-origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}], paths: [/anonymous/], agents: [anonymous] }
`,
      },
    });
  });

  after(async () => {
    await sluice.close();
    await origin.close();
  });

  /** An absolute-form request through the explicit proxy. */
  function viaProxy(path: string, mode: 'close' | 'end', options: { waitMs?: number; holdSluiceMs?: number }): Promise<string> {
    const request = `GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    return asDev(Number(new URL(sluice.proxyUrl).port), request, mode, options);
  }

  /**
   * The newest decision that `pick` selects. A client that closed may be gone before Sluice has
   * decided on what it sent, so the log is read again until the record is there (at most 5 s).
   */
  async function decision(pick: (record: Decision) => boolean): Promise<Decision | undefined> {
    for (let tries = 0; tries < 250; tries++) {
      const text = await readFile(join(sluice.stateDir, 'audit.jsonl'), 'utf8');
      const found = text.trim().split('\n').map((line) => JSON.parse(line) as Decision).filter((record) => record.kind === 'decision' && pick(record)).at(-1);
      if (found !== undefined) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return undefined;
  }

  const decisionFor = (path: string): Promise<Decision | undefined> => decision((record) => record.path === path);

  test('a client that closes right after sending keeps the uid it had when accepted', async () => {
    for (let i = 0; i < 8; i++) {
      const path = `/kept-${i}`;
      await viaProxy(path, 'close', { waitMs: 200 });
      const record = await decisionFor(path);
      assert.deepEqual([record?.agent, record?.via, record?.verdict], ['dev', 'uid', 'deny'], JSON.stringify(record));
      assert.ok(!origin.requests.some((request) => request.url === path), 'a denied request never reaches the origin');
    }
  });

  test('a client gone before Sluice accepted it is refused with IDENTITY_UNAVAILABLE, never attributed to root or anonymous', async () => {
    for (const path of ['/gone-0', '/anonymous/gone-1']) {
      await viaProxy(path, 'close', { holdSluiceMs: 700 });
      const record = await decisionFor(path);
      assert.deepEqual([record?.agent, record?.verdict, record?.reason], [null, 'error', 'identity_unavailable'], JSON.stringify(record));
      assert.ok(!origin.requests.some((request) => request.url === path));
    }
  });

  test('a half-closed client whose owner cannot be established is answered 403 IDENTITY_UNAVAILABLE', async () => {
    // A CONNECT, because Node's HTTP server drops a half-closed client's absolute-form request
    // unanswered; the tunnel path owns the socket and can still reply.
    const request = `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    const reply = await asDev(Number(new URL(sluice.proxyUrl).port), request, 'end', { holdSluiceMs: 700 });
    assert.match(reply, /^HTTP\/1\.1 403 Refused by Sluice: identity_unavailable\r\n/);
    assert.match(reply, /"code":"IDENTITY_UNAVAILABLE"/);
    const refused = await decision((record) => record.request_kind === 'tunnel');
    assert.deepEqual([refused?.agent, refused?.reason], [null, 'identity_unavailable']);
  });

  test('the transparent HTTP listener fixes the identity at accept the same way', async () => {
    const port = sluice.sluice.transparentHttpPort;
    assert.ok(port !== undefined);
    // Origin-form with a Host header, as a redirected agent sends it.
    const send = (path: string, options: { waitMs?: number; holdSluiceMs?: number }): Promise<string> =>
      asDev(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`, 'close', options);
    await send('/transparent-kept', { waitMs: 200 });
    const kept = await decisionFor('/transparent-kept');
    assert.deepEqual([kept?.agent, kept?.via, kept?.verdict], ['dev', 'uid', 'deny'], JSON.stringify(kept));
    await send('/anonymous/transparent-gone', { holdSluiceMs: 700 });
    const gone = await decisionFor('/anonymous/transparent-gone');
    assert.deepEqual([gone?.agent, gone?.reason], [null, 'identity_unavailable'], JSON.stringify(gone));
    assert.ok(!origin.requests.some((request) => request.url.startsWith('/transparent') || request.url.startsWith('/anonymous')));
  });
});
