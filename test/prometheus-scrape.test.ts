// A real Prometheus scrapes a real Sluice's admin port: a proxied request's decision comes back
// through the query API, the shipped alert rules load and evaluate cleanly, and every dashboard
// expression is PromQL that Prometheus accepts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ProxyAgent, request } from 'undici';
import { dashboardExpressions, readAlertRules, readDashboard } from './support/dashboard.js';
import { startPrometheus, type RunningPrometheus } from './support/prometheus-server.js';
import { ALLOW_LOOPBACK, startSluice, type RunningSluice } from './support/sluice.js';
import { until } from './support/until.js';

let origin: Server;
let sluice: RunningSluice;
let prometheus: RunningPrometheus;

before(async () => {
  origin = createServer((_request, response) => response.end('ok\n'));
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  sluice = await startSluice({ config: ALLOW_LOOPBACK });
  const admin = new URL(sluice.adminUrl).host;
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'rule_files: [sluice-alerts.yaml]',
    'scrape_configs:',
    '  - job_name: sluice',
    `    static_configs: [{ targets: ["${admin}"] }]`,
  ].join('\n');
  prometheus = await startPrometheus(`${config}\n`, { 'sluice-alerts.yaml': (await readAlertRules()).text });
});

after(async () => {
  await prometheus?.close();
  await sluice?.close();
  await new Promise((resolve) => origin?.close(resolve));
});

test('a proxied request shows up in sluice_decisions_total as Prometheus scraped it', async () => {
  const dispatcher = new ProxyAgent(sluice.proxyUrl);
  try {
    const response = await request(`http://127.0.0.1:${(origin.address() as AddressInfo).port}/`, { dispatcher });
    assert.equal(response.statusCode, 200);
    assert.equal(await response.body.text(), 'ok\n');
  } finally {
    await dispatcher.close();
  }
  const expression = 'sum(sluice_decisions_total{job="sluice"})';
  let count = 0;
  await until(async () => {
    const result = await prometheus.query(expression);
    count = Number(result.data?.result[0]?.value[1] ?? 0);
    return count > 0;
  }, `${expression} > 0 in Prometheus`);
  assert.equal(count, 1, 'one request, one decision');
  const byVerdict = await prometheus.query('sluice_decisions_total{job="sluice"}');
  assert.deepEqual(byVerdict.data?.result.map((sample) => [sample.metric['verdict'], sample.metric['reason']]), [['learn', 'learn_unmatched']]);
  const up = await prometheus.query('up{job="sluice"}');
  assert.equal(up.data?.result[0]?.value[1], '1');
});

test('the alert rules load into Prometheus and every one evaluates without error', async () => {
  let rules = await prometheus.rules();
  await until(async () => {
    rules = await prometheus.rules();
    return rules.length > 0 && rules.every((rule) => rule.health !== 'unknown');
  }, 'every alert rule to be evaluated');
  assert.deepEqual(rules.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError ?? rule.health}`), []);
  assert.ok(rules.some((rule) => rule.name === 'SluiceDenySpike'));
});

test('every dashboard expression is PromQL that Prometheus evaluates', async () => {
  const expressions = dashboardExpressions(await readDashboard());
  assert.ok(expressions.length >= 20);
  for (const { panel, expression } of expressions) {
    // Grafana fills these in before sending a query; any valid value will do here.
    const concrete = expression.replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m');
    const result = await prometheus.query(concrete);
    assert.equal(result.status, 'success', `${panel}: ${concrete}: ${result.error ?? ''}`);
  }
});
