// `sluice budget show`: token budgets per agent and group as the journal in the state directory
// (or, for a fleet, Redis) has them settled (limits from the config), read without a running
// Sluice and without changing it.
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { SYSTEM_CLOCK } from '../clock.js';
import type { LoadedConfig } from '../config/load.js';
import { loadConfig } from '../config/load.js';
import { PACKAGE_ROOT } from '../config/package-root.js';
import { openSharedState } from '../fleet/shared-state.js';
import { BUDGET_STORE_FILE, BudgetLedger, readStore, type BudgetReport } from '../meter/index.js';
import { createLogger } from '../obs/log.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice budget show [--config FILE] [--agent NAME] [--json]

  show   print each agent's and group's inference token budgets: limit, used, remaining and
         when each UTC window resets, from STATE_DIR/${BUDGET_STORE_FILE}, or from Redis
         when the config says state.backend: redis

Options:
  -c, --config FILE   the configuration whose budgets and state directory to read (default: $SLUICE_CONFIG)
  -a, --agent NAME    only this agent (and the groups it is charged to)
      --json          one JSON document instead of a table
  -h, --help          this help

Exit status 1 when the journal is damaged (Sluice then refuses inference until it is restored
or moved aside) or Redis cannot be reached.`;

/** The settled budgets, or why they cannot be read. */
async function settledBudgets(loaded: LoadedConfig, env: Readonly<Record<string, string | undefined>>): Promise<{ reports: BudgetReport[] } | { failure: string }> {
  const { config } = loaded;
  if (config.state.backend === 'redis') {
    const baseDir = loaded.file === null ? PACKAGE_ROOT : dirname(loaded.file);
    const shared = await openSharedState(config, { stateDir: loaded.stateDir, baseDir, env, clock: SYSTEM_CLOCK, log: createLogger('silent') });
    try {
      return { reports: await shared.budgets.report() };
    } finally {
      await shared.close();
    }
  }
  const contents = await readStore(join(loaded.stateDir, BUDGET_STORE_FILE));
  if (contents.failure !== null) return { failure: contents.failure };
  const ledger = new BudgetLedger(config.inference.budgets, Date.now);
  ledger.load(contents.records);
  return { reports: ledger.report() };
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { config: { type: 'string', short: 'c' }, agent: { type: 'string', short: 'a' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice budget', error, USAGE);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'show') return usageFailure(io, 'sluice budget', 'expected "show"', USAGE);
  try {
    const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
    const settled = await settledBudgets(loaded, io.env);
    if ('failure' in settled) {
      io.err(`sluice budget: ${settled.failure}`);
      return EXIT.failed;
    }
    const agent = values.agent;
    const groups = agent === undefined ? [] : (loaded.config.agents.find((entry) => entry.name === agent)?.groups ?? []);
    const wanted = agent === undefined ? undefined : new Set([`agent:${agent}`, ...groups.map((group) => `group:${group}`)]);
    const reports = settled.reports.filter((report) => wanted === undefined || wanted.has(report.subject));
    if (values.json === true) {
      io.out(JSON.stringify({ budgets: reports }, null, 2));
      return EXIT.ok;
    }
    if (reports.length === 0) {
      io.err('sluice budget: no budgets configured and no usage recorded yet');
      return EXIT.ok;
    }
    const rows = [['SUBJECT', 'WINDOW', 'LIMIT', 'USED', 'REMAINING', 'RESETS (UTC)']];
    for (const report of reports) {
      if (report.per_request !== null) rows.push([report.subject, 'per_request', String(report.per_request), '-', '-', '-']);
      for (const [window, entry] of Object.entries(report.windows)) {
        rows.push([report.subject, window, entry.limit === null ? '-' : String(entry.limit), String(entry.used), entry.remaining === null ? '-' : String(entry.remaining), entry.resets_at]);
      }
    }
    const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
    for (const row of rows) io.out(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
    return EXIT.ok;
  } catch (error) {
    return failure(io, 'sluice budget', error);
  }
}

export const budgetCommand: Command = { usage: USAGE, run };
