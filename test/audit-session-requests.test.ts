// Calls inside an intercepted TLS session: each has its own decision record, sealed before the call
// goes upstream and committed with the chain's next batch (the session's CONNECT decision is durable
// first). On a disk that really fills up (a tmpfs in a private mount namespace) the chain's refusal
// still fails them closed, and every call the provider answered is either in the chain or logged lost.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ProxyAgent, request } from 'undici';
import { runSluice } from './support/cli.js';
import { startFakeProvider } from './support/fake-providers.js';
import { ManualTimer } from './support/manual-timer.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { ALLOW_LOOPBACK, startSluice, type AuditLine } from './support/sluice.js';
import { mountSmallDisk } from './support/small-disk.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const CHAT = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }], max_completion_tokens: 50 });

function inferenceConfig(caFile: string): string {
  return `${ALLOW_LOOPBACK}\n  ca_file: ${caFile}\ninference:\n  hosts: [localhost]\n  models: [gpt-test]\n`;
}

/** One keep-alive connection: every call rides the same CONNECT tunnel and intercepted session. */
async function oneSession(proxyUrl: string, stateDir: string): Promise<ProxyAgent> {
  return new ProxyAgent({ uri: proxyUrl, requestTls: { ca: await readFile(join(stateDir, 'ca.pem'), 'utf8') }, connections: 1 });
}

async function call(agent: ProxyAgent, port: number): Promise<{ status: number; decision: string }> {
  const response = await request(`https://localhost:${port}/v1/chat/completions`, { method: 'POST', dispatcher: agent, body: CHAT, headers: { 'content-type': 'application/json' } });
  await response.body.text();
  return { status: response.statusCode, decision: String(response.headers['sluice-decision'] ?? '') };
}

const sessionCalls = (records: readonly AuditLine[]): AuditLine[] => records.filter((record) => record.kind === 'decision' && record.method === 'POST');

if (insideLoopbackNamespace(import.meta.url)) {
  test('every call inside one intercepted session has its own decision record, sealed before its inference record', async () => {
    const ca = await makeTestCa();
    const provider = await startFakeProvider(ca);
    const sluice = await startSluice({ config: inferenceConfig(ca.caFile) });
    const agent = await oneSession(sluice.proxyUrl, sluice.stateDir);
    try {
      for (let index = 0; index < 5; index++) assert.equal((await call(agent, provider.port)).status, 200);
      await sluice.stop();
      const records = await sluice.auditRecords();
      const tunnels = records.filter((record) => record.kind === 'decision' && record.method === 'CONNECT');
      assert.equal(tunnels.length, 1, 'one CONNECT carried every call');
      const calls = sessionCalls(records);
      assert.deepEqual(
        calls.map((record) => [record.verdict, record.host, record.path]),
        Array.from({ length: 5 }, () => ['learn', 'localhost', '/v1/chat/completions']),
      );
      for (const decision of calls) {
        const metered = records.find((record) => record.kind === 'inference' && record.request_id === decision.request_id);
        assert.ok(metered !== undefined && Number(metered.seq) > Number(decision.seq), 'the decision precedes what the call used');
      }
      const verify = await runSluice(['audit', 'verify', join(sluice.stateDir, 'audit.jsonl')]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    } finally {
      await agent.close();
      await sluice.close();
      await provider.close();
      await ca.remove();
    }
  });

  test('once the chain refuses appends a call inside the session is refused before it reaches the provider, and no forwarded call goes unaccounted', async () => {
    const ca = await makeTestCa();
    const provider = await startFakeProvider(ca);
    const dir = await mkdtemp(join(tmpdir(), 'sluice-session-disk-'));
    await mkdir(join(dir, 'state'));
    const disk = await mountSmallDisk(join(dir, 'state'), 384);
    const timer = new ManualTimer();
    const sluice = await startSluice({ dir, config: inferenceConfig(ca.caFile), auditRetry: timer.schedule });
    const agent = await oneSession(sluice.proxyUrl, sluice.stateDir);
    try {
      assert.equal((await call(agent, provider.port)).status, 200);
      await disk.fill();
      // Calls go on until the batch their records ride in fails; the next one finds the chain refusing.
      let answered = 1;
      let refusal: { status: number; decision: string } | undefined;
      for (let tries = 0; refusal === undefined && tries < 400; tries++) {
        const outcome = await call(agent, provider.port);
        if (outcome.status === 200) answered += 1;
        else refusal = outcome;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal(refusal?.status, 503);
      assert.match(refusal.decision, /reason=audit_unavailable/);
      assert.equal(provider.bodies.length, answered, 'the refused call never reached the provider');

      await disk.free();
      timer.fire();
      await until(async () => (await fetch(`${sluice.adminUrl}/readyz`)).status === 200, 'the chain to recover');
      assert.equal((await call(agent, provider.port)).status, 200, 'a new session works again');
      await sluice.stop();

      const lost = sluice.logs.filter((line) => /decision record of a forwarded session request lost/.test(String(line.msg)));
      const recorded = sessionCalls(await sluice.auditRecords()).filter((record) => record.verdict === 'learn');
      assert.equal(recorded.length + lost.length, provider.bodies.length, 'each forwarded call is in the chain or reported lost');
      const verify = await runSluice(['audit', 'verify', join(sluice.stateDir, 'audit.jsonl')]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    } finally {
      await agent.close();
      await sluice.stop();
      await disk.unmount();
      await rm(dir, { recursive: true, force: true });
      await provider.close();
      await ca.remove();
    }
  });
}
