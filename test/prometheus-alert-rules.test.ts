// The alert rules in deploy/prometheus pass promtool, use only declared metrics, and fire (or stay
// quiet) as intended on synthetic series run through `promtool test rules`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { DEPLOY, readAlertRules } from './support/dashboard.js';
import { declaredSeries, promqlMetricNames } from './support/metric-names.js';

const dir = await mkdtemp(join(tmpdir(), 'sluice-alert-rules-'));
after(() => rm(dir, { recursive: true, force: true }));
const { text, rules } = await readAlertRules();

function promtool(args: readonly string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { cwd: dir, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code), output: stdout + stderr }));
  });
}

test('promtool check rules accepts the file', async () => {
  const result = await promtool(['check', 'rules', join(DEPLOY, 'prometheus', 'sluice-alerts.yaml')]);
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('the rules cover what operators asked to be paged for, each with a severity and a summary', () => {
  const names = rules.map((rule) => rule.alert);
  for (const wanted of ['SluiceBundleStale', 'SluiceBundleRejected', 'SluiceBundleFetchFailing', 'SluiceBlocklistStale', 'SluiceAuditWriteFailing',
    'SluiceAuditCommitSlow', 'SluiceAuditStreamErrors', 'SluiceAuditStreamLagging', 'SluiceInferenceBudgetNearlySpent', 'SluiceDenySpike']) assert.ok(names.includes(wanted), wanted);
  for (const rule of rules) {
    assert.ok(['warning', 'critical'].includes(rule.labels?.['severity'] ?? ''), `${rule.alert}: severity`);
    assert.ok((rule.annotations?.['summary'] ?? '') !== '', `${rule.alert}: summary`);
  }
});

test('every rule reads only declared metrics', async () => {
  const declared = await declaredSeries();
  for (const rule of rules) {
    const names = promqlMetricNames(rule.expr);
    assert.ok(names.length > 0, rule.alert);
    assert.deepEqual(names.filter((name) => !declared.has(name)), [], rule.alert);
  }
});

/** One `promtool test rules` case: series sampled every minute, and the alerts expected at each time. */
interface Case {
  readonly series: Readonly<Record<string, string>>;
  readonly expect: readonly { readonly at: string; readonly alert: string; readonly firing: readonly Readonly<Record<string, string>>[] }[];
}

const CASES: readonly Case[] = [
  {
    // a: a worker dies every minute from 2m on; b: one restart, then calm
    series: { 'sluice_worker_restarts_total{instance="a"}': '0 0 1 2 3 4 5 6 7 8', 'sluice_worker_restarts_total{instance="b"}': '0 1 1 1 1 1 1 1 1 1' },
    expect: [{ at: '2m', alert: 'SluiceWorkersRestarting', firing: [] }, { at: '8m', alert: 'SluiceWorkersRestarting', firing: [{ severity: 'warning', instance: 'a' }] }],
  },
  {
    series: { 'up{job="sluice", instance="a"}': '1 1 0 0 0 0 0' },
    expect: [{ at: '3m', alert: 'SluiceDown', firing: [] }, { at: '5m', alert: 'SluiceDown', firing: [{ severity: 'critical', job: 'sluice', instance: 'a' }] }],
  },
  {
    // stale: last confirmed at t=60 s; fresh: confirmed every scrape; never: no bundle source
    series: {
      'sluice_bundle_last_success_timestamp_seconds{instance="stale"}': '60+0x180',
      'sluice_bundle_last_success_timestamp_seconds{instance="fresh"}': '0+60x180',
      'sluice_bundle_last_success_timestamp_seconds{instance="never"}': '0+0x180',
    },
    expect: [{ at: '60m', alert: 'SluiceBundleStale', firing: [] }, { at: '2h', alert: 'SluiceBundleStale', firing: [{ severity: 'warning', instance: 'stale' }] }],
  },
  {
    series: {
      'sluice_bundle_verifications_total{instance="a", outcome="accepted"}': '0+1x30',
      'sluice_bundle_verifications_total{instance="a", outcome="fetch_failure"}': '0+1x30',
      'sluice_bundle_verifications_total{instance="a", outcome="bad_signature"}': '0 0 0 1 1 1 1 1',
    },
    expect: [
      { at: '5m', alert: 'SluiceBundleFetchFailing', firing: [] },
      { at: '15m', alert: 'SluiceBundleFetchFailing', firing: [{ severity: 'warning', instance: 'a' }] },
      { at: '5m', alert: 'SluiceBundleRejected', firing: [{ severity: 'critical', instance: 'a', outcome: 'bad_signature' }] },
    ],
  },
  {
    series: {
      'sluice_blocklist_last_success_timestamp_seconds{instance="a", source="stale-feed"}': '60+0x1600',
      'sluice_blocklist_last_success_timestamp_seconds{instance="a", source="fresh-feed"}': '0+60x1600',
    },
    expect: [
      { at: '1440m', alert: 'SluiceBlocklistStale', firing: [] },
      { at: '1500m', alert: 'SluiceBlocklistStale', firing: [{ severity: 'warning', instance: 'a', source: 'stale-feed' }] },
    ],
  },
  {
    series: {
      'sluice_audit_write_errors_total{instance="a"}': '0 0 0 0 0 1 1 1 1 1',
      'sluice_audit_stream_errors_total{instance="a"}': '0 0 1 1 1 1 1 1 1 1 1 1',
      'sluice_audit_stream_lag_records{instance="a"}': '20000+0x20',
      'sluice_audit_stream_lag_records{instance="b"}': '5+0x20',
    },
    expect: [
      { at: '4m', alert: 'SluiceAuditWriteFailing', firing: [] },
      { at: '7m', alert: 'SluiceAuditWriteFailing', firing: [{ severity: 'critical', instance: 'a' }] },
      { at: '9m', alert: 'SluiceAuditStreamErrors', firing: [{ severity: 'warning', instance: 'a' }] },
      { at: '15m', alert: 'SluiceAuditStreamLagging', firing: [{ severity: 'warning', instance: 'a' }] },
    ],
  },
  {
    // a: every commit between 0.25 s and 1 s; b: every commit under 10 ms
    series: {
      'sluice_audit_commit_seconds_bucket{instance="a", le="0.01"}': '0+0x20',
      'sluice_audit_commit_seconds_bucket{instance="a", le="0.25"}': '0+0x20',
      'sluice_audit_commit_seconds_bucket{instance="a", le="1"}': '0+10x20',
      'sluice_audit_commit_seconds_bucket{instance="a", le="+Inf"}': '0+10x20',
      'sluice_audit_commit_seconds_bucket{instance="b", le="0.01"}': '0+10x20',
      'sluice_audit_commit_seconds_bucket{instance="b", le="0.25"}': '0+10x20',
      'sluice_audit_commit_seconds_bucket{instance="b", le="1"}': '0+10x20',
      'sluice_audit_commit_seconds_bucket{instance="b", le="+Inf"}': '0+10x20',
    },
    expect: [
      { at: '8m', alert: 'SluiceAuditCommitSlow', firing: [] },
      { at: '16m', alert: 'SluiceAuditCommitSlow', firing: [{ severity: 'warning', instance: 'a' }] },
    ],
  },
  {
    series: {
      'sluice_inference_budget_used_ratio{instance="a", agent="builder-7", window="day"}': '0.95+0x5',
      'sluice_inference_budget_used_ratio{instance="a", agent="reviewer", window="day"}': '0.5+0x5',
    },
    expect: [{ at: '1m', alert: 'SluiceInferenceBudgetNearlySpent', firing: [{ severity: 'warning', instance: 'a', agent: 'builder-7', window: 'day' }] }],
  },
  {
    // a: its Redis gone from the second minute; b: reachable throughout
    series: { 'sluice_shared_state_up{instance="a"}': '1 0 0 0 0', 'sluice_shared_state_up{instance="b"}': '1 1 1 1 1' },
    expect: [
      { at: '1m', alert: 'SluiceSharedStateDown', firing: [] },
      { at: '3m', alert: 'SluiceSharedStateDown', firing: [{ severity: 'critical', instance: 'a' }] },
    ],
  },
  {
    // spike: 1/min for an hour, then 300/min. steady: 300/min throughout. fresh: allowed traffic,
    // then its first denials ever at 60m, so it has no hour of denials to compare against.
    series: {
      'sluice_decisions_total{instance="spike", verdict="deny", reason="no_matching_rule"}': '0+1x60 360+300x19',
      'sluice_decisions_total{instance="steady", verdict="deny", reason="rule_deny"}': '0+300x80',
      'sluice_decisions_total{instance="fresh", verdict="allow", reason="rule_allow"}': '0+10x80',
      'sluice_decisions_total{instance="fresh", verdict="deny", reason="rule_deny"}': '_x60 0+300x20',
    },
    expect: [
      { at: '55m', alert: 'SluiceDenySpike', firing: [] },
      { at: '64m', alert: 'SluiceDenySpike', firing: [{ severity: 'warning', instance: 'fresh' }, { severity: 'warning', instance: 'spike' }] },
      // fresh still fires: its hour before holds only fifteen minutes of denials
      { at: '75m', alert: 'SluiceDenySpike', firing: [{ severity: 'warning', instance: 'fresh' }, { severity: 'warning', instance: 'spike' }] },
    ],
  },
];

test('each alert fires on the series it is meant for and stays quiet otherwise (promtool test rules)', async () => {
  // Annotations are prose for humans; promtool would compare them verbatim, so the copy under test
  // drops them and keeps every expression, duration and label as shipped.
  const document = parse(text) as { groups: { rules: Record<string, unknown>[] }[] };
  for (const group of document.groups) for (const rule of group.rules) delete rule['annotations'];
  await writeFile(join(dir, 'rules.yaml'), stringify(document));
  const tests = CASES.map((testCase) => ({
    interval: '1m',
    input_series: Object.entries(testCase.series).map(([series, values]) => ({ series, values })),
    alert_rule_test: testCase.expect.map(({ at, alert, firing }) => ({ eval_time: at, alertname: alert, exp_alerts: firing.map((labels) => ({ exp_labels: labels })) })),
  }));
  await writeFile(join(dir, 'tests.yaml'), stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests }));
  const result = await promtool(['test', 'rules', 'tests.yaml']);
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /SUCCESS/);
});
