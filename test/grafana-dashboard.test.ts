// The Grafana dashboard in deploy/grafana parses, lays out cleanly, covers what operators asked to
// see, and queries only metrics Sluice exposes (or that issues 10/14 announce).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { allPanels, dashboardExpressions, readDashboard, type Dashboard } from './support/dashboard.js';
import { ANNOUNCED_METRICS, declaredSeries, promqlMetricNames } from './support/metric-names.js';

let dashboard: Dashboard;
let declared: Set<string>;

before(async () => {
  dashboard = await readDashboard();
  declared = await declaredSeries();
});

test('the PromQL scanner finds metric names and nothing else', () => {
  assert.deepEqual(promqlMetricNames('rate(foo_total{a="b(c) bar"}[5m] offset 1h) / on (instance) group_left (x) bar_seconds'), ['foo_total', 'bar_seconds']);
  assert.deepEqual(promqlMetricNames('histogram_quantile(0.9, sum by (le) (rate(x_bucket{instance=~"$instance"}[$__rate_interval])))'), ['x_bucket']);
  assert.deepEqual(promqlMetricNames('sum without (reason) (y) > bool 3e2 unless z or vector(0)'), ['y', 'z']);
  assert.deepEqual(promqlMetricNames('time() - max(last_success > 0)'), ['last_success']);
});

test('the dashboard has an identity, unique panel ids and a layout within 24 columns', () => {
  assert.equal(dashboard.uid, 'sluice-overview');
  assert.equal(dashboard.title, 'Sluice');
  const panels = allPanels(dashboard);
  const ids = panels.map((panel) => panel.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const panel of panels as (typeof panels[number] & { gridPos?: { x: number; y: number; w: number; h: number } })[]) {
    const grid = panel.gridPos;
    assert.ok(grid !== undefined && grid.x >= 0 && grid.w > 0 && grid.x + grid.w <= 24, `${panel.title ?? '?'}: gridPos inside 24 columns`);
    if (panel.type !== 'row') assert.ok((panel.targets ?? []).length > 0, `${panel.title ?? '?'} queries something`);
  }
});

test('every expression reads only declared metrics, and reads at least one', () => {
  const expressions = dashboardExpressions(dashboard);
  assert.ok(expressions.length >= 20);
  for (const { panel, expression } of expressions) {
    const names = promqlMetricNames(expression);
    assert.ok(names.length > 0, `${panel}: ${expression} names no metric`);
    const unknown = names.filter((name) => !declared.has(name));
    assert.deepEqual(unknown, [], `${panel}: ${expression}`);
  }
});

test('the instance variable lists instances from a declared metric', () => {
  const variable = dashboard.templating?.list?.find((entry) => entry.name === 'instance');
  const metric = /^label_values\((\w+), instance\)$/.exec(variable?.definition ?? '')?.[1];
  assert.ok(metric !== undefined && declared.has(metric), variable?.definition);
});

test('the dashboard covers decisions, traffic, policy sources, approvals, budgets and the audit stream', () => {
  const used = new Set(dashboardExpressions(dashboard).flatMap(({ expression }) => promqlMetricNames(expression)));
  const wanted = [
    'sluice_decisions_total', // by verdict, by reason, top deny reasons
    'sluice_connections_active', // active tunnels
    'sluice_upstream_connect_seconds_bucket', // upstream latency
    'sluice_bytes_total',
    'sluice_bundle_version',
    'sluice_bundle_last_success_timestamp_seconds', // bundle age
    'sluice_blocklist_last_success_timestamp_seconds', // blocklist age
    'sluice_blocklist_entries', // blocklist size
    'sluice_audit_write_errors_total',
    'sluice_audit_commit_seconds_bucket',
    'sluice_audit_stream_lag_records',
    'sluice_audit_stream_sent_total',
    'sluice_audit_stream_errors_total',
    'sluice_upstream_tcp_connect_seconds_bucket',
    'sluice_approvals_active',
    'sluice_inference_tokens_total',
    'sluice_inference_budget_used_ratio',
  ];
  const announced = Object.entries(ANNOUNCED_METRICS).map(([name, type]) => (type === 'histogram' ? `${name}_bucket` : name));
  assert.deepEqual([...wanted, ...announced].filter((name) => !used.has(name)), []);
  const titles = allPanels(dashboard).map((panel) => panel.title ?? '');
  assert.ok(titles.includes('Top deny reasons (time range)'));
});
