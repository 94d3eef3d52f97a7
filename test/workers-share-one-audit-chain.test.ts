// workers: 2 as a service manager runs it: a real `sluice run` forking two proxy workers. Every
// decision from both lands in one verifying chain with unique ids; an approval, a reload and a
// mode switch made once reach both; a killed worker is replaced and audited; SIGTERM ends signed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { SourceError } from '../src/config/yaml.js';
import { adminApi, makeAdminToken } from './support/admin-api.js';
import { runSluice } from './support/cli.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, type AuditLine } from './support/sluice.js';
import { spawnSluice } from './support/sluice-process.js';
import { until } from './support/until.js';

const AGENT_TOKEN = `agent-${randomBytes(12).toString('hex')}`;
const root = await mkdtemp(join(tmpdir(), 'sluice-workers-'));
after(() => rm(root, { recursive: true, force: true }));

/** One request on a connection of its own (no keep-alive), so the cluster spreads them over workers. */
function get(proxyPort: number, url: string, agent?: string): Promise<{ status: number; decision: string }> {
  const headers: Record<string, string> = { host: new URL(url).host };
  if (agent !== undefined) headers['proxy-authorization'] = `Basic ${Buffer.from(`${agent}:${AGENT_TOKEN}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const sent = httpRequest({ host: '127.0.0.1', port: proxyPort, path: url, headers, agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, decision: String(response.headers['sluice-decision'] ?? '') }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

async function many(count: number, send: () => Promise<{ status: number; decision: string }>): Promise<{ status: number; decision: string }[]> {
  const replies: { status: number; decision: string }[] = [];
  // Ten at a time: enough to keep both workers busy without flooding a shared CI machine.
  for (let sent = 0; sent < count; sent += 10) replies.push(...(await Promise.all(Array.from({ length: Math.min(10, count - sent) }, send))));
  return replies;
}

/** The worker a request id names: `<boot>-w<N>-<counter>`. */
function workerOf(requestId: unknown): string {
  const match = /-w(\d+)-[0-9a-z]+$/.exec(String(requestId));
  assert.ok(match !== null, `request id ${String(requestId)} names its worker`);
  return match[1] ?? '';
}

/** A metric's samples summed, scraped on a fresh connection as Prometheus would. */
async function sampleSum(adminPort: number, name: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const sent = httpRequest({ host: '127.0.0.1', port: adminPort, path: '/metrics', agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
    });
    sent.on('error', reject);
    sent.end();
  });
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

describe('workers: 2', () => {
  test('one audit chain, one approval view, reload, a restarted worker and a signed stop', async (t) => {
    const origin = await startHttpOrigin();
    const second = await startHttpOrigin();
    const third = await startHttpOrigin();
    t.after(() => Promise.all([origin.close(), second.close(), third.close()]));
    const dir = await mkdtemp(join(root, 'run-'));
    const rulesFile = join(dir, 'rules', 'local.yaml');
    await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
    await mkdir(join(dir, 'rules'));
    await writeFile(rulesFile, 'rules: []\n');
    const configFile = join(dir, 'sluice.yaml');
    await writeFile(
      configFile,
      [
        'listen:',
        '  proxy: "127.0.0.1:0"',
        '  admin: "127.0.0.1:0"',
        'state_dir: state',
        'rules: [rules]',
        'blocklists: blocklists.yaml',
        'mode: learn',
        'workers: 2',
        `agents:\n  - { name: builder, mode: strict, token_sha256: ["${createHash('sha256').update(AGENT_TOKEN).digest('hex')}"], limits: { max_concurrent: 50 } }`,
        ALLOW_LOOPBACK,
        '',
      ].join('\n'),
    );
    const sluice = spawnSluice(['run', '--config', configFile]);
    t.after(() => sluice.stop('SIGKILL', 1_000));
    const started = await sluice.waitForLog('sluice started', 120_000);
    const proxyPort = (started['proxy'] as { port: number }).port;
    const adminPort = (started['admin'] as { port: number }).port;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const pids = started['worker_pids'] as number[];
    assert.equal(pids.length, 2);
    const auditFile = join(dir, 'state', 'audit.jsonl');
    const records = async (): Promise<AuditLine[]> => (await readFile(auditFile, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditLine);
    const decisions = async (): Promise<AuditLine[]> => (await records()).filter((record) => record.kind === 'decision');

    // Many requests, each on its own connection: every one decided, recorded once, by either worker.
    const learned = await many(60, () => get(proxyPort, `http://127.0.0.1:${origin.port}/learn`));
    assert.deepEqual(new Set(learned.map((reply) => reply.status)), new Set([200]));
    const firstDecisions = await decisions();
    assert.equal(firstDecisions.length, 60);
    assert.equal(new Set(firstDecisions.map((record) => record.request_id)).size, 60, 'request ids are unique across workers');
    assert.equal(new Set(firstDecisions.map((record) => workerOf(record.request_id))).size, 2, 'both workers served traffic');
    // /metrics on the primary sums the workers' counters.
    await until(async () => (await sampleSum(adminPort, 'sluice_decisions_total')) === 60, 'the primary reports both workers\' decisions');

    // Strict builder is refused until an approval granted once through the admin API reaches both workers.
    const target = `http://127.0.0.1:${origin.port}/approved`;
    assert.ok((await many(10, () => get(proxyPort, target, 'builder'))).every((reply) => reply.status === 403));
    const approver = await makeAdminToken({ configFile }, 'ops', 'approver');
    const granted = await adminApi({ adminUrl }, 'POST', '/v1/approvals', approver, { agent: 'builder', host: '127.0.0.1', port: origin.port, ttl_ms: 3_600_000, reason: 'workers test' });
    assert.equal(granted.status, 201, JSON.stringify(granted.body));
    const approved = await many(20, () => get(proxyPort, target, 'builder'));
    assert.ok(approved.every((reply) => reply.status === 200 && reply.decision.includes('reason=approval_allow')), JSON.stringify(approved));
    const approvedDecisions = (await decisions()).filter((record) => record.reason === 'approval_allow');
    assert.equal(approvedDecisions.length, 20);
    assert.equal(new Set(approvedDecisions.map((record) => workerOf(record.request_id))).size, 2, 'the approval was honoured by both workers');

    // A rule added on disk applies in both workers after one SIGHUP to the primary, audited once.
    const other = `http://127.0.0.1:${second.port}/ruled`;
    assert.ok((await many(4, () => get(proxyPort, other, 'builder'))).every((reply) => reply.status === 403));
    await writeFile(rulesFile, `rules:\n  - { id: second-origin, action: allow, hosts: ["127.0.0.1"], ports: [${second.port}] }\n`);
    sluice.child.kill('SIGHUP');
    await until(async () => (await records()).some((record) => record.kind === 'reload' && record.outcome === 'accepted'), 'the reload is recorded');
    await until(async () => (await many(10, () => get(proxyPort, other, 'builder'))).every((reply) => reply.status === 200), 'every worker applies the new rule');
    assert.equal((await records()).filter((record) => record.kind === 'reload').length, 1);

    // Builder switched to Learn through the admin API: both workers let it through unmatched.
    const unmatched = `http://127.0.0.1:${third.port}/learned`;
    assert.ok((await many(4, () => get(proxyPort, unmatched, 'builder'))).every((reply) => reply.status === 403));
    const admin = await makeAdminToken({ configFile }, 'root', 'admin');
    assert.equal((await adminApi({ adminUrl }, 'PUT', '/v1/agents/builder/mode', admin, { mode: 'learn' })).status, 200);
    const learnedNow = await many(10, () => get(proxyPort, unmatched, 'builder'));
    assert.ok(learnedNow.every((reply) => reply.status === 200 && reply.decision.includes('reason=learn_unmatched')), JSON.stringify(learnedNow));
    const learnDecisions = (await decisions()).filter((record) => record.agent === 'builder' && record.reason === 'learn_unmatched');
    assert.equal(new Set(learnDecisions.map((record) => workerOf(record.request_id))).size, 2, 'the mode switch reached both workers');

    // A killed worker is replaced and its end recorded; traffic goes on through both.
    process.kill(pids[0] ?? 0, 'SIGKILL');
    await until(async () => (await records()).some((record) => record.kind === 'worker_exit'), 'the worker exit is recorded');
    const exit = (await records()).find((record) => record.kind === 'worker_exit');
    assert.equal(exit?.pid, pids[0]);
    assert.equal(exit?.signal, 'SIGKILL');
    await until(async () => (await sampleSum(adminPort, 'sluice_worker_restarts_total')) === 1, 'the restart is counted');
    const replacement = String(exit?.replaced_by);
    await until(async () => {
      await many(10, () => get(proxyPort, `http://127.0.0.1:${origin.port}/after`));
      return (await decisions()).some((record) => workerOf(record.request_id) === replacement);
    }, 'the replacement worker takes traffic');

    // SIGTERM drains: a response still being written when the signal comes is finished, and its
    // close record lands before `stop`; then a clean exit and a chain ending in the shutdown checkpoint.
    const slow = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('first half, ');
      setTimeout(() => response.end('second half'), 1_500);
    });
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    t.after(() => new Promise((resolve) => slow.close(resolve)));
    const slowPort = (slow.address() as AddressInfo).port;
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const sent = httpRequest({ host: '127.0.0.1', port: proxyPort, path: `http://127.0.0.1:${slowPort}/slow`, headers: { host: `127.0.0.1:${slowPort}` }, agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      });
      sent.on('error', reject);
      sent.end();
    });
    await until(async () => (await decisions()).some((record) => record.port === slowPort), 'the slow request is admitted');
    const stopped = sluice.stop('SIGTERM', 30_000);
    assert.deepEqual(await inFlight, { status: 200, body: 'first half, second half' });
    assert.deepEqual(await stopped, { code: 0, signal: null });
    const all = await records();
    const slowClose = all.findIndex((record) => record.kind === 'close' && record.port === slowPort);
    assert.ok(slowClose > 0 && slowClose < all.length - 2, 'the drained request\'s close record comes before stop');
    assert.equal(all.at(-2)?.kind, 'stop');
    assert.equal(all.at(-1)?.trigger, 'shutdown');
    const ids = all.filter((record) => record.kind === 'decision').map((record) => record.request_id);
    assert.equal(new Set(ids).size, ids.length, 'request ids stay unique after the restart');
    const pubkey = (await runSluice(['audit', 'pubkey', '--state-dir', join(dir, 'state')])).stdout.trim();
    const verified = await runSluice(['audit', 'verify', '--pubkey', pubkey, auditFile]);
    assert.equal(verified.code, 0, verified.stdout);
    assert.match(verified.stdout, /\(shutdown\)/);
  });

  test('two workers racing on one inference budget never spend past it: the ledger is the primary\'s', async (t) => {
    // A plain-HTTP model API that honours max_tokens as real ones do (Sluice clamps it to what is
    // left of the budget): 10 prompt tokens, up to 90 completion tokens.
    const provider = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const bound = Number((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { max_tokens?: unknown }).max_tokens ?? 90);
        const usage = { prompt_tokens: 10, completion_tokens: Math.min(90, bound) };
        // Held a moment so calls overlap and race for the budget.
        setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model: 'gpt-test', usage })), 50);
      });
    });
    provider.listen(0, '127.0.0.1');
    await once(provider, 'listening');
    t.after(() => new Promise((resolve) => provider.close(resolve)));
    const providerPort = (provider.address() as AddressInfo).port;
    const dir = await mkdtemp(join(root, 'budget-'));
    await mkdir(join(dir, 'rules'));
    await writeFile(join(dir, 'rules', 'local.yaml'), 'rules: []\n');
    await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
    const configFile = join(dir, 'sluice.yaml');
    await writeFile(configFile, [
      'listen:', '  proxy: "127.0.0.1:0"', '  admin: "127.0.0.1:0"', 'state_dir: state', 'rules: [rules]', 'blocklists: blocklists.yaml', 'mode: learn', 'workers: 2',
      `agents:\n  - { name: builder, token_sha256: ["${createHash('sha256').update(AGENT_TOKEN).digest('hex')}"] }`,
      'inference:\n  hosts: [localhost]\n  budgets:\n    - { agent: builder, daily: 1000 }',
      ALLOW_LOOPBACK, '',
    ].join('\n'));
    const sluice = spawnSluice(['run', '--config', configFile]);
    t.after(() => sluice.stop('SIGKILL', 1_000));
    const started = await sluice.waitForLog('sluice started', 120_000);
    const proxyPort = (started['proxy'] as { port: number }).port;
    const body = JSON.stringify({ model: 'gpt-test', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    const call = (): Promise<{ status: number; decision: string }> => new Promise((resolve, reject) => {
      const url = `http://localhost:${providerPort}/v1/chat/completions`;
      const headers = { host: `localhost:${providerPort}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'proxy-authorization': `Basic ${Buffer.from(`builder:${AGENT_TOKEN}`).toString('base64')}` };
      const sent = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'POST', path: url, headers, agent: false }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, decision: '' }));
      });
      sent.on('error', reject);
      sent.end(body);
    });
    // Twenty at once over fresh connections: split per worker, the budget would let about twice through.
    const replies = await Promise.all(Array.from({ length: 20 }, call));
    const admitted = replies.filter((reply) => reply.status === 200).length;
    assert.ok(admitted > 0 && replies.some((reply) => reply.status === 429), JSON.stringify(replies.map((reply) => reply.status)));
    assert.deepEqual(await sluice.stop('SIGTERM', 30_000), { code: 0, signal: null });
    const records = (await readFile(join(dir, 'state', 'audit.jsonl'), 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditLine);
    const inference = records.filter((record) => record.kind === 'inference');
    assert.equal(new Set(records.filter((record) => record.kind === 'decision').map((record) => workerOf(record.request_id))).size, 2, 'both workers metered calls');
    const spent = inference.filter((record) => record.outcome === 'settled').reduce((sum, record) => sum + Number(record.input_tokens) + Number(record.output_tokens), 0);
    assert.equal(inference.filter((record) => record.outcome === 'settled').length, admitted);
    assert.ok(spent <= 1000, `spent ${spent} of a 1000-token budget`);
  });

  test('refuses workers above 1 with a bundle, naming the key', async () => {
    const dir = await mkdtemp(join(root, 'refused-'));
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, 'workers: 2\nbundle:\n  file: allowlist.bundle\n  keys: [keys/ops.pub]\n');
    await assert.rejects(loadConfig(file, { isRoot: false }), (error: unknown) => error instanceof SourceError && /sluice\.yaml:\d+:\d+: workers: .*workers: 1 only/.test(error.message));
    await writeFile(file, 'workers: auto\n');
    assert.equal((await loadConfig(file, { isRoot: false })).config.workers, 'auto');
  });
});
