// The metric names dashboards and alert rules may use (what a real Sluice exposes, plus any
// announced before they are built), and a PromQL scanner listing the metrics an expression reads.
import { startSluice } from './sluice.js';

/** Not exported yet (none now: every metric the dashboards use is real). Histograms expand to their series below. */
export const ANNOUNCED_METRICS: Readonly<Record<string, 'counter' | 'gauge' | 'histogram'>> = {};

/** Series Prometheus itself adds to every target. */
const SYNTHETIC = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'];

/** The series names of one metric family, as Prometheus stores them. */
function seriesOf(name: string, type: string): string[] {
  if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
  if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
  return [name];
}

/** Every series name a Prometheus text exposition declares through its `# TYPE` lines. */
export function exposedSeries(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const match of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    for (const name of seriesOf(match[1] ?? '', match[2] ?? '')) names.add(name);
  }
  return names;
}

/** Starts a real Sluice, reads its /metrics, and adds the announced and synthetic names. */
export async function declaredSeries(): Promise<Set<string>> {
  const sluice = await startSluice();
  try {
    const response = await fetch(`${sluice.adminUrl}/metrics`);
    const names = exposedSeries(await response.text());
    for (const [name, type] of Object.entries(ANNOUNCED_METRICS)) for (const series of seriesOf(name, type)) names.add(series);
    for (const name of SYNTHETIC) names.add(name);
    return names;
  } finally {
    await sluice.close();
  }
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects. Strings, label matchers, ranges and grouping
 * label lists are removed first; what remains that is neither a function call nor a keyword is
 * a metric name. Grafana variables only ever appear inside matchers and ranges here.
 */
export function promqlMetricNames(expression: string): string[] {
  const stripped = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  // the token must not continue (no backtracking into a shorter name) and must not be a call
  for (const match of stripped.matchAll(/(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    const token = match[1] ?? '';
    if (!KEYWORDS.has(token.toLowerCase())) names.add(token);
  }
  return [...names];
}
