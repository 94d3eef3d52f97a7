// A CONNECT tunnel carries TLS only to the host it named: a ClientHello whose SNI is another host
// (domain fronting through an allowed name) is refused with a TLS alert and audited.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { startHttpsOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';
import { makeTestCa } from './support/test-ca.js';

/** Opens a CONNECT tunnel to `target` and resolves with the raw socket once the proxy said 200. */
function openTunnel(proxyPort: number, target: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    socket.once('data', (chunk: Buffer) => {
      const head = chunk.toString('latin1');
      if (head.startsWith('HTTP/1.1 200')) resolve(socket);
      else reject(new Error(head));
    });
    socket.once('error', reject);
  });
}

function handshake(socket: Socket, servername: string, ca: string): Promise<'ok' | string> {
  return new Promise((resolve) => {
    const secure = tlsConnect({ socket, servername, ca });
    secure.once('secureConnect', () => {
      secure.destroy();
      resolve('ok');
    });
    secure.once('error', (error: Error) => resolve(error.message));
  });
}

describe('SNI check inside CONNECT tunnels', () => {
  const origins = suiteFixture(async (keep) => {
    const ca = keep(await makeTestCa(['localhost', 'origin.test']), (made) => made.remove());
    return { ca, origin: keep(await startHttpsOrigin(ca)) };
  });

  describe('on by default', () => {
    const proxy = suiteFixture(async (keep) => {
      const sluice = keep(await startSluice({ config: ALLOW_LOOPBACK }));
      return { sluice, port: sluice.proxyPort };
    });

    test('a ClientHello for the CONNECT host passes', async () => {
      const { ca, origin } = origins();
      const { port } = proxy();
      assert.equal(await handshake(await openTunnel(port, `localhost:${origin.port}`), 'localhost', ca.caCert), 'ok');
    });

    test('a ClientHello naming another host is refused with an access_denied alert and audited', async () => {
      const { ca, origin } = origins();
      const { sluice, port } = proxy();
      const outcome = await handshake(await openTunnel(port, `localhost:${origin.port}`), 'origin.test', ca.caCert);
      assert.match(outcome, /access denied|alert number 49/i);
      // The close record rides in a later commit (nothing waits for it): wait for it to land.
      await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'close' && record.outcome === 'SNI_MISMATCH'), 'the close record');
      const records = await sluice.auditRecords();
      assert.ok(records.some((record) => record.kind === 'tunnel_screen' && record.reason === 'sni_mismatch'), 'the refusal is in the audit chain');
    });

    test('a screened tunnel is counted once in sluice_decisions_total: a refused one as its deny, a passed one as admitted', async () => {
      const { ca, origin } = origins();
      const { sluice, port } = proxy();
      // No rules here, so Learn mode admits the tunnel (verdict learn); allow would count the same.
      const counts = async (): Promise<{ admitted: number; deny: number }> => {
        const text = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
        const sum = (verdict: string): number =>
          [...text.matchAll(new RegExp(`^sluice_decisions_total\\{[^}]*verdict="${verdict}"[^}]*\\} (\\d+)$`, 'gm'))].reduce((total, match) => total + Number(match[1]), 0);
        return { admitted: sum('allow') + sum('learn'), deny: sum('deny') };
      };
      const before = await counts();
      await handshake(await openTunnel(port, `localhost:${origin.port}`), 'origin.test', ca.caCert);
      const refused = await counts();
      assert.deepEqual([refused.admitted - before.admitted, refused.deny - before.deny], [0, 1], 'the refused tunnel is one deny');
      const text = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
      assert.match(text, /^sluice_decisions_total\{verdict="deny",reason="sni_mismatch"\} [1-9]/m);
      assert.equal(await handshake(await openTunnel(port, `localhost:${origin.port}`), 'localhost', ca.caCert), 'ok');
      const passed = await counts();
      assert.deepEqual([passed.admitted - refused.admitted, passed.deny - refused.deny], [1, 0], 'the passed tunnel is counted once, as admitted');
    });
  });

  test('a tunnel the agent closes before sending anything ends at once, and stopping Sluice does not wait for open tunnels', async (t) => {
    const { origin } = origins();
    const sluice = await startSluice({ config: ALLOW_LOOPBACK });
    let stopped = false;
    t.after(() => (stopped ? undefined : sluice.close()));
    const port = sluice.proxyPort;
    const quiet = await openTunnel(port, `localhost:${origin.port}`);
    quiet.end();
    const auditFile = join(sluice.stateDir, 'audit.jsonl');
    const deadline = Date.now() + 3000;
    while (!(await readFile(auditFile, 'utf8')).includes('"kind":"close"')) {
      assert.ok(Date.now() < deadline, 'the half-closed tunnel was never closed');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await openTunnel(port, `localhost:${origin.port}`);
    const started = Date.now();
    await sluice.close();
    stopped = true;
    assert.ok(Date.now() - started < 2000, `close() waited ${Date.now() - started} ms on an open tunnel`);
  });

  test('can be switched off with connect.verify_tunnel_sni: false', async (t) => {
    const { ca, origin } = origins();
    const sluice = await startSluice({ config: `${ALLOW_LOOPBACK}\n  verify_tunnel_sni: false` });
    t.after(() => sluice.close());
    const port = sluice.proxyPort;
    assert.equal(await handshake(await openTunnel(port, `localhost:${origin.port}`), 'origin.test', ca.caCert), 'ok');
  });
});
