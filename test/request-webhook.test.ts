// The approval-request webhook: each new access request is POSTed as JSON signed with
// HMAC-SHA256 (X-Sluice-Signature), retried with back-off, and never holds up the proxy.
import assert from 'node:assert/strict';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Sluice } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { isOperatorError } from '../src/errors.js';
import { createLogger } from '../src/obs/log.js';
import { Metrics } from '../src/obs/metrics.js';
import type { AccessRequest } from '../src/policy/access-requests.js';
import { RequestWebhook } from '../src/policy/request-webhook.js';
import { configIssues } from './support/config-issues.js';
import { curl } from './support/curl.js';
import { ManualTimer } from './support/manual-timer.js';
import { startHttpOrigin } from './support/origins.js';
import { ALLOW_LOOPBACK, startSluice } from './support/sluice.js';
import { until } from './support/until.js';

const SECRET = 'webhook-secret-7d1e';

interface Delivery {
  readonly body: string;
  readonly signature: string;
  readonly delivery: string;
  readonly validSignature: boolean;
}

/** A receiver as a chat bot would write it: it checks the HMAC over the raw body before anything else. */
async function startReceiver(answer: (count: number, response: ServerResponse) => void): Promise<{ url: string; deliveries: Delivery[]; close(): Promise<void> }> {
  const deliveries: Delivery[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const signature = String(request.headers['x-sluice-signature'] ?? '');
      const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
      const validSignature = signature.length === expected.length && timingSafeEqual(Buffer.from(signature), expected);
      deliveries.push({ body: body.toString('utf8'), signature, delivery: String(request.headers['x-sluice-delivery'] ?? ''), validSignature });
      answer(deliveries.length, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sluice/requests`,
    deliveries,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const REQUEST: AccessRequest = {
  id: 'req_0123456789abcdef',
  agent: 'coder',
  groups: [],
  via: 'token',
  host: 'api.example.test',
  port: 443,
  firstSeen: new Date('2026-01-01T00:00:00Z'),
  lastSeen: new Date('2026-01-01T00:00:00Z'),
  count: 1,
  status: 'pending',
  deniedBy: null,
};

describe('the request webhook', () => {
  test('a failed delivery is retried after a back-off, each attempt signed over its exact body', async (t) => {
    const receiver = await startReceiver((count, response) => response.writeHead(count === 1 ? 500 : 204).end());
    t.after(() => receiver.close());
    const timer = new ManualTimer();
    const metrics = new Metrics({ processMetrics: false });
    const webhook = new RequestWebhook({ url: receiver.url, secret: SECRET, timeoutMs: 5000, retries: 3, schedule: timer.schedule, metrics, now: () => new Date('2026-01-01T00:00:05Z') });
    t.after(() => webhook.close());
    webhook.announce(REQUEST);
    await until(() => timer.waiting === 1, 'the retry to be scheduled');
    assert.deepEqual(timer.delays, [1000]);
    timer.fire();
    await until(() => receiver.deliveries.length === 2, 'the second attempt');
    await until(async () => /outcome="delivered"\} 1/.test(await metrics.registry.metrics()), 'the delivery to be counted');
    assert.equal(timer.waiting, 0);
    for (const delivery of receiver.deliveries) {
      assert.ok(delivery.validSignature, delivery.signature);
      assert.equal(delivery.delivery, REQUEST.id);
    }
    assert.deepEqual(JSON.parse(receiver.deliveries[0]?.body ?? ''), {
      event: 'access_request.created',
      sent_at: '2026-01-01T00:00:05.000Z',
      request: { id: REQUEST.id, agent: 'coder', host: 'api.example.test', port: 443, first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z', count: 1 },
    });
    assert.match(await metrics.registry.metrics(), /sluice_webhook_deliveries_total\{outcome="failed"\} 1/);
  });

  test('after its retries it gives up, the back-off doubling each time', async (t) => {
    const receiver = await startReceiver((_count, response) => response.writeHead(503).end());
    t.after(() => receiver.close());
    const timer = new ManualTimer();
    const metrics = new Metrics({ processMetrics: false });
    const webhook = new RequestWebhook({ url: receiver.url, secret: SECRET, timeoutMs: 5000, retries: 2, schedule: timer.schedule, metrics });
    t.after(() => webhook.close());
    webhook.announce(REQUEST);
    for (const attempts of [1, 2]) {
      await until(() => timer.waiting === 1 && receiver.deliveries.length === attempts, `attempt ${attempts} to fail`);
      timer.fire();
    }
    await until(async () => /outcome="gave_up"\} 1/.test(await metrics.registry.metrics()), 'the webhook to give up');
    assert.equal(receiver.deliveries.length, 3);
    assert.deepEqual(timer.delays, [1000, 2000]);
    assert.equal(timer.waiting, 0);
  });

  test('the config names the missing secret, with its line', () => {
    assert.match(configIssues('approvals:\n  webhook_url: https://bot.example.test/hook\n'), /sluice\.yaml:2:\d+: approvals\.webhook_url: give exactly one of webhook_secret_file and webhook_secret_env/);
    assert.match(configIssues('approvals:\n  webhook_url: ftp://bot.example.test/\n  webhook_secret_env: HOOK\n'), /approvals\.webhook_url: expected an http:\/\/ or https:\/\/ URL/);
  });

  test('Sluice does not start when the secret it names is missing', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'sluice-hook-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'hook.yaml');
    await writeFile(config, 'listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }\nstate_dir: hook-state\nrules: []\napprovals:\n  webhook_url: http://127.0.0.1:9/\n  webhook_secret_env: SLUICE_HOOK_SECRET\n');
    const loaded = await loadConfig(config, { isRoot: false });
    await assert.rejects(Sluice.start(loaded, { log: createLogger('silent'), processMetrics: false, env: {} }), (error: unknown) => {
      assert.ok(isOperatorError(error, 'CONFIG_INVALID'));
      assert.match(error.message, /approvals\.webhook_secret_env: the webhook secret is missing or empty/);
      return true;
    });
  });

  test("a denial is answered while the receiver is still thinking; the signed announcement follows", async (t) => {
    let answerFirst: (() => void) | undefined;
    const receiver = await startReceiver((_count, response) => {
      answerFirst = () => response.writeHead(200).end();
    });
    t.after(() => receiver.close());
    const origin = await startHttpOrigin();
    t.after(() => origin.close());
    const token = 'hooked-token';
    const dir = await mkdtemp(join(tmpdir(), 'sluice-hook-'));
    await writeFile(join(dir, 'hook.key'), `${SECRET}\n`);
    const sluice = await startSluice({
      config: `${ALLOW_LOOPBACK}\nmode: strict\nagents:\n  - { name: hooked, token_sha256: ["${createHash('sha256').update(token).digest('hex')}"] }\napprovals:\n  webhook_url: ${receiver.url}\n  webhook_secret_file: hook.key\n`,
      dir,
    });
    t.after(() => sluice.close());
    const proxy = ['-x', sluice.proxyUrl, '--proxy-header', `Proxy-Authorization: Bearer ${token}`];
    const denied = await curl([...proxy, `http://127.0.0.1:${origin.port}/unknown`]);
    assert.equal(denied.status, 403);
    await until(() => receiver.deliveries.length === 1 && answerFirst !== undefined, 'the announcement to arrive');
    const again = await curl([...proxy, `http://127.0.0.1:${origin.port}/unknown-again`]);
    assert.equal(again.status, 403, 'the proxy answers while the webhook is unanswered');
    answerFirst?.();
    const delivery = receiver.deliveries[0];
    assert.ok(delivery?.validSignature, 'the receiver verified the HMAC with the secret from webhook_secret_file');
    const announced = JSON.parse(delivery.body) as { request: { agent: string; host: string; port: number } };
    assert.deepEqual(announced.request, { ...announced.request, agent: 'hooked', host: '127.0.0.1', port: origin.port });
    assert.equal(receiver.deliveries.length, 1, 'a repeat of a pending request is not announced again');
  });
});
