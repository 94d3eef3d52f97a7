// The connect-time histograms measure what their names say: resolve-and-vet once per admitted
// request, the TCP dial once per new upstream socket (a reused pooled socket dials nothing).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { curl } from './support/curl.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';

async function count(running: RunningSluice, histogram: string): Promise<number> {
  const text = await (await fetch(`${running.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${histogram}_count (\\S+)$`, 'm').exec(text)?.[1]);
}

test('resolve-and-vet is timed per admitted request, the TCP connect per new upstream socket, audit commits per batch', async () => {
  const origin = await startHttpOrigin();
  const running = await startSluice({ config: `${ALLOW_LOOPBACK}\naudit:\n  fsync: false` });
  try {
    const commits = await count(running, 'sluice_audit_commit_seconds');
    assert.ok(commits >= 1, 'the start record was a commit');
    // Two requests on one keep-alive connection to one origin: one pool, one socket.
    const forwarded = await curl(['-x', running.proxyUrl, `http://127.0.0.1:${origin.port}/a`, '-:', '-x', running.proxyUrl, `http://127.0.0.1:${origin.port}/b`]);
    assert.equal(forwarded.status, 200, forwarded.stderr);
    const tunnel = await curl(['-x', running.proxyUrl, '-p', `http://127.0.0.1:${origin.port}/tunnelled`]);
    assert.equal(tunnel.status, 200, tunnel.stderr);
    assert.equal(await count(running, 'sluice_upstream_connect_seconds'), 3, 'resolve-and-vet: three admitted requests');
    assert.equal(await count(running, 'sluice_upstream_tcp_connect_seconds'), 2, 'TCP connect: one pooled socket, one tunnel');
    assert.ok((await count(running, 'sluice_audit_commit_seconds')) > commits);
  } finally {
    await running.close();
    await origin.close();
  }
});
