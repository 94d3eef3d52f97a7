// Each agent's own limits (agents[].limits): a token-bucket request rate and a cap on requests in
// progress; over either, 429 with Retry-After, counted and audited in aggregate, other agents untouched.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { AuditEntry, AuditLog } from '../src/audit/kinds.js';
import type { AuditRecord } from '../src/audit/record.js';
import { AgentLimits } from '../src/ingress/agent-limits.js';
import { Metrics } from '../src/obs/metrics.js';
import { ManualTimer } from './support/manual-timer.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { until } from './support/until.js';

const sha = (token: string): string => createHash('sha256').update(token).digest('hex');

interface Reply {
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly decision: string | undefined;
}

/** One absolute-form GET through the proxy on a fresh connection, as the agent holding `token`. */
function get(proxyPort: number, token: string, url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port: proxyPort, path: url, agent: false, headers: { 'proxy-authorization': `Bearer ${token}`, host: new URL(url).host } }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'], decision: response.headers['sluice-decision'] as string | undefined }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** Opens a CONNECT tunnel as the agent holding `token`; resolves with the socket and the proxy's status line. */
function tunnel(proxyPort: number, token: string, target: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`));
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n')) {
        socket.removeAllListeners('data');
        resolve({ socket, head: text });
      }
    });
    socket.on('error', reject);
  });
}

class MemoryAudit implements AuditLog {
  readonly entries: AuditEntry[] = [];
  append(entry: AuditEntry): Promise<AuditRecord> {
    this.entries.push(entry);
    return Promise.resolve({} as AuditRecord);
  }
}

function agent(name: string, limits: { requests_per_second?: number; burst?: number; max_concurrent?: number }) {
  return { name, groups: [], token_sha256: [], uids: [], cidrs: [], limits, on_unknown: 'deny' as const, hold_timeout_ms: 60_000 };
}

describe('agent limits, by themselves', () => {
  test('a bucket of burst tokens refills at the rate, and Retry-After says when the next one comes', async () => {
    let now = 0;
    const limits = new AgentLimits([agent('a', { requests_per_second: 2, burst: 2 })], { audit: new MemoryAudit(), metrics: new Metrics({ processMetrics: false }), now: () => now, schedule: new ManualTimer().schedule });
    assert.equal((await limits.admit('a')).admitted, true);
    assert.equal((await limits.admit('a')).admitted, true);
    assert.deepEqual(await limits.admit('a'), { admitted: false, code: 'AGENT_RATE_LIMITED', retryAfterSeconds: 1 });
    now += 499;
    assert.equal((await limits.admit('a')).admitted, false);
    now += 1;
    assert.equal((await limits.admit('a')).admitted, true);
    assert.equal((await limits.admit('unlimited')).admitted, true);
  });

  test('a concurrency slot is given back once, however often release is called', async () => {
    const limits = new AgentLimits([agent('a', { max_concurrent: 1 })], { audit: new MemoryAudit(), metrics: new Metrics({ processMetrics: false }), schedule: new ManualTimer().schedule });
    const first = await limits.admit('a');
    assert.ok(first.admitted);
    assert.deepEqual(await limits.admit('a'), { admitted: false, code: 'AGENT_CONNECTION_LIMIT', retryAfterSeconds: 1 });
    first.release();
    first.release();
    const second = await limits.admit('a');
    assert.ok(second.admitted);
    assert.equal((await limits.admit('a')).admitted, false, 'a double release did not free a second slot');
  });

  test('refusals become one summary record per interval, rows per agent and limit', async () => {
    const timer = new ManualTimer();
    const audit = new MemoryAudit();
    const limits = new AgentLimits([agent('a', { requests_per_second: 0.01, burst: 1 }), agent('b', { max_concurrent: 1 })], { audit, metrics: new Metrics({ processMetrics: false }), schedule: timer.schedule });
    await limits.admit('a');
    await limits.admit('b');
    for (let index = 0; index < 500; index += 1) {
      await limits.admit('a');
      await limits.admit('b');
    }
    assert.equal(audit.entries.length, 0, 'nothing is written per refusal');
    assert.equal(timer.waiting, 1);
    timer.fire();
    await until(() => audit.entries.length === 1, 'the summary');
    const summary = audit.entries[0];
    assert.equal(summary?.kind, 'agent_limit_summary');
    assert.deepEqual(summary.kind === 'agent_limit_summary' ? summary.counts : [], [
      { agent: 'a', limit: 'rate', count: 500 },
      { agent: 'b', limit: 'concurrency', count: 500 },
    ]);
    assert.equal(timer.waiting, 0, 'a quiet interval keeps no timer');
  });
});

describe('agent limits in the proxy', () => {
  const fixture = suiteFixture(async (keep) => {
    const origin = keep(await startHttpOrigin());
    const sluice = keep(
      await startSluice({
        config: `${ALLOW_LOOPBACK}
mode: strict
agents:
  - { name: noisy, token_sha256: ["${sha('noisy-token')}"], limits: { requests_per_second: 0.01, burst: 5 } }
  - { name: quiet, token_sha256: ["${sha('quiet-token')}"], limits: { requests_per_second: 0.01, burst: 5 } }
  - { name: tunneler, token_sha256: ["${sha('tunnel-token')}"], limits: { max_concurrent: 2 } }
  - { name: free, token_sha256: ["${sha('free-token')}"] }
`,
        rules: { 'origin.yaml': `rules:\n  - { id: origin, action: allow, hosts: [127.0.0.1], ports: [${origin.port}] }\n` },
      }),
    );
    return { origin, sluice };
  });

  test('one agent flooding gets 429 with Retry-After past its burst; another agent, under the same load, is untouched', async () => {
    const { origin, sluice } = fixture();
    const url = (path: string): string => `http://127.0.0.1:${origin.port}${path}`;
    const [flood, quiet] = await Promise.all([
      Promise.all(Array.from({ length: 40 }, (_, index) => get(sluice.proxyPort, 'noisy-token', url(`/flood/${index}`)))),
      Promise.all(Array.from({ length: 5 }, (_, index) => get(sluice.proxyPort, 'quiet-token', url(`/quiet/${index}`)))),
    ]);
    assert.equal(flood.filter((reply) => reply.status === 200).length, 5, 'the burst is served');
    const limited = flood.filter((reply) => reply.status === 429);
    assert.equal(limited.length, 35);
    for (const reply of limited) {
      assert.match(reply.decision ?? '', /^deny; reason=agent_rate_limited;/);
      const seconds = Number(reply.retryAfter);
      assert.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= 100, `Retry-After ${reply.retryAfter}`);
    }
    assert.deepEqual(quiet.map((reply) => reply.status), [200, 200, 200, 200, 200], 'the quiet agent has its own bucket');
    assert.equal(origin.requests.filter((report) => report.url.startsWith('/flood/')).length, 5, 'refused requests never reach the origin');
  });

  test('a CONNECT over the concurrency cap is refused with 429 until one of the open tunnels closes', async () => {
    const { origin, sluice } = fixture();
    const target = `127.0.0.1:${origin.port}`;
    const first = await tunnel(sluice.proxyPort, 'tunnel-token', target);
    const second = await tunnel(sluice.proxyPort, 'tunnel-token', target);
    assert.match(first.head, /^HTTP\/1\.1 200 /);
    assert.match(second.head, /^HTTP\/1\.1 200 /);
    const third = await tunnel(sluice.proxyPort, 'tunnel-token', target);
    assert.match(third.head, /^HTTP\/1\.1 429 Denied by Sluice: agent_connection_limit/);
    assert.match(third.head, /\r\nRetry-After: 1\r\n/);
    third.socket.destroy();
    const other = await get(sluice.proxyPort, 'free-token', `http://${target}/while-tunnels-open`);
    assert.equal(other.status, 200, 'the cap is per agent');
    const closes = (await sluice.auditRecords()).filter((record) => record.kind === 'close').length;
    first.socket.destroy();
    await until(async () => (await sluice.auditRecords()).filter((record) => record.kind === 'close').length > closes, 'the closed tunnel to be recorded');
    const fourth = await tunnel(sluice.proxyPort, 'tunnel-token', target);
    assert.match(fourth.head, /^HTTP\/1\.1 200 /, 'the slot was given back');
    fourth.socket.destroy();
    second.socket.destroy();
  });

  test('refusals are counted in sluice_agent_limited_total and audited as one summary, not one record each', async () => {
    const { sluice } = fixture();
    const metrics = await (await fetch(`${sluice.adminUrl}/metrics`)).text();
    assert.match(metrics, /^sluice_agent_limited_total\{agent="noisy",limit="rate"\} 35$/m);
    assert.match(metrics, /^sluice_agent_limited_total\{agent="tunneler",limit="concurrency"\} 1$/m);
    assert.match(metrics, /^sluice_decisions_total\{verdict="deny",reason="agent_rate_limited"\} 35$/m);
    await sluice.stop();
    const records = await sluice.auditRecords();
    assert.equal(records.filter((record) => record.kind === 'decision' && record.agent === 'noisy').length, 5, 'only admitted requests have decision records');
    const summaries = records.filter((record) => record.kind === 'agent_limit_summary');
    assert.equal(summaries.length, 1);
    assert.deepEqual(summaries[0]?.['counts'], [
      { agent: 'noisy', limit: 'rate', count: 35 },
      { agent: 'tunneler', limit: 'concurrency', count: 1 },
    ]);
  });
});
