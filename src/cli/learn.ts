// `sluice learn list|propose`: shows what Learn mode recorded and turns it into a rule file an
// operator can review, without touching the running proxy's store.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { proposeRules } from '../policy/learn-proposal.js';
import { LEARN_STORE_FILE, LearnStore } from '../policy/learn-store.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice learn list|propose [--config FILE | --state-dir DIR]

  list      print each (host, port, agent) Learn mode let through, with counts and times
  propose   print a rule file with one allow rule per host seen, for review

Options:
  -c, --config FILE    read the state directory from this configuration (default: $SLUICE_CONFIG)
  -s, --state-dir DIR  read ${LEARN_STORE_FILE} from DIR directly
  -h, --help           this help

Without either option the state directory is the one \`sluice run\` uses by default.`;

async function storeFile(values: { config?: string | undefined; 'state-dir'?: string | undefined }, io: CliIo): Promise<string> {
  if (values['state-dir'] !== undefined) return join(resolve(values['state-dir']), LEARN_STORE_FILE);
  const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
  return join(loaded.stateDir, LEARN_STORE_FILE);
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { config: { type: 'string', short: 'c' }, 'state-dir': { type: 'string', short: 's' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice learn', error, USAGE);
  }
  const { values, positionals } = parsed;
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== 'list' && action !== 'propose') || (values.config !== undefined && values['state-dir'] !== undefined)) {
    return usageFailure(io, 'sluice learn', 'expected "list" or "propose" and at most one of --config, --state-dir', USAGE);
  }
  let file: string;
  try {
    file = await storeFile(values, io);
  } catch (error) {
    return failure(io, 'sluice learn', error);
  }
  const store = await LearnStore.open(file, { readOnly: true });
  await store.close();
  if (store.corrupt !== null) {
    io.err(`sluice learn: ${file} is not a readable Learn store (${store.corrupt.reason})`);
    return EXIT.failed;
  }
  const entries = store.entries();
  if (action === 'propose') {
    io.out(proposeRules(entries).trimEnd());
    return EXIT.ok;
  }
  if (entries.length === 0) {
    io.err(`sluice learn: nothing recorded yet in ${file}`);
    return EXIT.ok;
  }
  const rows = entries.map((entry) => [entry.host, String(entry.port), entry.agent, String(entry.count), entry.firstSeen.toISOString(), entry.lastSeen.toISOString()]);
  for (const line of table([['HOST', 'PORT', 'AGENT', 'COUNT', 'FIRST_SEEN', 'LAST_SEEN'], ...rows])) io.out(line);
  return EXIT.ok;
}

export const learnCommand: Command = {
  usage: USAGE,
  run,
};
