// An agent must not change the UID it is identified by. The owner of a local client socket is
// asked of the kernel once, when Sluice accepts the connection, from an ESTABLISHED socket with the
// exact address pair; a client that closes or half-closes later keeps its identity, and one whose
// owner cannot be established is refused with IDENTITY_UNAVAILABLE, never handed to root's agent,
// the address's agent or anonymous.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';

const DEV_UID = 1001;

// Runs as the agent's uid: connects, waits `waitMs`, sends the request, then closes its socket
// (`close`) or half-closes it and reads the reply (`end`). Prints the reply, if any, on exit.
// Given a FIFO, it writes one byte to it once its socket is closed or half-closed (or after 5 s,
// whatever happened), so the test knows when to let Sluice run again.
const CLIENT = `
const fs = require('node:fs');
const net = require('node:net');
const [port, request, mode, waitMs, fifo] = process.argv.slice(1);
let signalled = false;
const signal = () => {
  if (signalled || fifo === '') return;
  signalled = true;
  fs.writeFileSync(fifo, 'x');
};
setTimeout(signal, 5000).unref();
const socket = net.connect(Number(port), '127.0.0.1', () => setTimeout(() => {
  if (mode === 'close') socket.write(request, () => socket.destroy());
  else socket.end(request, signal);
}, Number(waitMs)));
let reply = '';
socket.on('data', (chunk) => (reply += chunk.toString('latin1')));
socket.on('error', signal);
socket.on('close', () => {
  signal();
  process.stdout.write(reply);
});
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

let fifoDir = '';

/**
 * Blocks this process, and the Sluice in it, until the client has written to `fifo` (at most
 * 10 s): meanwhile the kernel completes the client's handshake, but Sluice cannot accept it.
 */
function holdUntilSignalled(fifo: string): void {
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const byte = Buffer.alloc(1);
  try {
    for (let tries = 0; tries < 1000; tries++) {
      // With no writer yet a non-blocking read returns 0 (or EAGAIN); the client's byte ends it.
      try {
        if (readSync(fd, byte) > 0) return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      }
      Atomics.wait(pause, 0, 0, 10);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Sends `request` to `port` as DEV_UID and resolves with what the client read. With `holdSluice`,
 * Sluice's event loop is held from before the client starts until it has closed (or half-closed)
 * its socket, so Sluice accepts a connection whose client end is no longer ESTABLISHED.
 */
function asDev(port: number, request: string, mode: 'close' | 'end', options: { waitMs?: number; holdSluice?: boolean } = {}): Promise<string> {
  const fifo = options.holdSluice === true ? join(fifoDir, `signal-${Math.random().toString(36).slice(2)}`) : '';
  if (fifo !== '') execFileSync('mkfifo', ['-m', '0666', fifo]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, String(port), request, mode, String(options.waitMs ?? 0), fifo], {
      uid: DEV_UID,
      gid: DEV_UID,
      env: {},
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
    child.on('error', reject);
    child.on('close', () => resolve(out));
    // spawn() has started the process already; nothing of this process runs until it signals.
    if (fifo !== '') holdUntilSignalled(fifo);
  });
}

describe('identity is fixed when the connection is accepted', () => {
  let origin: Origin;
  let sluice: RunningSluice;

  before(async () => {
    fifoDir = await mkdtemp(join(tmpdir(), 'sluice-identity-'));
    await chmod(fifoDir, 0o755);
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
    await rm(fifoDir, { recursive: true, force: true });
  });

  /** An absolute-form request through the explicit proxy. */
  function viaProxy(path: string, mode: 'close' | 'end', options: { waitMs?: number; holdSluice?: boolean }): Promise<string> {
    const request = `GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    return asDev(sluice.proxyPort, request, mode, options);
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
    // The client waits long enough for Sluice to have accepted it, then sends and closes at once.
    for (let i = 0; i < 5; i++) {
      const path = `/kept-${i}`;
      await viaProxy(path, 'close', { waitMs: 400 });
      const record = await decisionFor(path);
      assert.deepEqual([record?.agent, record?.via, record?.verdict], ['dev', 'uid', 'deny'], JSON.stringify(record));
      assert.ok(!origin.requests.some((request) => request.url === path), 'a denied request never reaches the origin');
    }
  });

  test('a client gone before Sluice accepted it is refused with IDENTITY_UNAVAILABLE, never attributed to root or anonymous', async () => {
    for (const path of ['/gone-0', '/anonymous/gone-1']) {
      await viaProxy(path, 'close', { holdSluice: true });
      const record = await decisionFor(path);
      assert.deepEqual([record?.agent, record?.verdict, record?.reason], [null, 'error', 'identity_unavailable'], JSON.stringify(record));
      assert.ok(!origin.requests.some((request) => request.url === path));
    }
  });

  test('a half-closed client whose owner cannot be established is answered 403 IDENTITY_UNAVAILABLE', async () => {
    // A CONNECT, because Node's HTTP server drops a half-closed client's absolute-form request
    // unanswered; the tunnel path owns the socket and can still reply.
    const request = `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    const reply = await asDev(sluice.proxyPort, request, 'end', { holdSluice: true });
    assert.match(reply, /^HTTP\/1\.1 403 Refused by Sluice: identity_unavailable\r\n/);
    assert.match(reply, /"code":"IDENTITY_UNAVAILABLE"/);
    const refused = await decision((record) => record.request_kind === 'tunnel');
    assert.deepEqual([refused?.agent, refused?.reason], [null, 'identity_unavailable']);
  });

  test('the transparent HTTP listener fixes the identity at accept the same way', async () => {
    const port = sluice.sluice.transparentHttpPort;
    assert.ok(port !== undefined);
    // Origin-form with a Host header, as a redirected agent sends it.
    const send = (path: string, options: { waitMs?: number; holdSluice?: boolean }): Promise<string> =>
      asDev(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`, 'close', options);
    await send('/transparent-kept', { waitMs: 400 });
    const kept = await decisionFor('/transparent-kept');
    assert.deepEqual([kept?.agent, kept?.via, kept?.verdict], ['dev', 'uid', 'deny'], JSON.stringify(kept));
    await send('/anonymous/transparent-gone', { holdSluice: true });
    const gone = await decisionFor('/anonymous/transparent-gone');
    assert.deepEqual([gone?.agent, gone?.reason], [null, 'identity_unavailable'], JSON.stringify(gone));
    assert.ok(!origin.requests.some((request) => request.url.startsWith('/transparent') || request.url.startsWith('/anonymous')));
  });
});
