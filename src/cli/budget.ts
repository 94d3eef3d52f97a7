// `sluice budget show`: token budgets per agent and group as the journal in the state directory
// has them settled (limits from the config), read without a running Sluice and without changing it.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { BUDGET_STORE_FILE, BudgetLedger, readStore } from '../meter/index.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice budget show [--config FILE] [--agent NAME] [--json]

  show   print each agent's and group's inference token budgets: limit, used, remaining and
         when each UTC window resets, from STATE_DIR/${BUDGET_STORE_FILE}

Options:
  -c, --config FILE   the configuration whose budgets and state directory to read (default: $SLUICE_CONFIG)
  -a, --agent NAME    only this agent (and the groups it is charged to)
      --json          one JSON document instead of a table
  -h, --help          this help

Exit status 1 when the journal is damaged: Sluice then refuses inference until it is restored
or moved aside.`;

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
    const contents = await readStore(join(loaded.stateDir, BUDGET_STORE_FILE));
    if (contents.failure !== null) {
      io.err(`sluice budget: ${contents.failure}`);
      return EXIT.failed;
    }
    const ledger = new BudgetLedger(loaded.config.inference.budgets, Date.now);
    ledger.load(contents.records);
    const agent = values.agent;
    const groups = agent === undefined ? [] : (loaded.config.agents.find((entry) => entry.name === agent)?.groups ?? []);
    const wanted = agent === undefined ? undefined : new Set([`agent:${agent}`, ...groups.map((group) => `group:${group}`)]);
    const reports = ledger.report().filter((report) => wanted === undefined || wanted.has(report.subject));
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
