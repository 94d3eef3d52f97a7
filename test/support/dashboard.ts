// Reads the shipped Grafana dashboard and alert rules from deploy/ and lists the PromQL they
// run, so tests can check each expression against real metric names and a real Prometheus.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** dist/test/support → deploy/ in the source tree */
export const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy');

export interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: string; readonly refId?: string }[];
  readonly panels?: readonly Panel[];
}

export interface Dashboard {
  readonly uid?: string;
  readonly title?: string;
  readonly panels?: readonly Panel[];
  readonly templating?: { readonly list?: readonly { readonly name?: string; readonly definition?: string; readonly query?: unknown }[] };
}

export async function readDashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(join(DEPLOY, 'grafana', 'sluice.json'), 'utf8')) as Dashboard;
}

/** Every panel, including those nested in collapsed rows. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return (dashboard.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export function dashboardExpressions(dashboard: Dashboard): { panel: string; expression: string }[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title ?? `panel ${panel.id ?? '?'}`, expression: target.expr ?? '' })));
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export async function readAlertRules(): Promise<{ text: string; rules: AlertRule[] }> {
  const text = await readFile(join(DEPLOY, 'prometheus', 'sluice-alerts.yaml'), 'utf8');
  const document = parse(text) as { groups: { rules: AlertRule[] }[] };
  return { text, rules: document.groups.flatMap((group) => group.rules) };
}
