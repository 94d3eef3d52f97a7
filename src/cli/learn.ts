// `sluice learn list|propose`: shows what Learn mode recorded and turns it into a rule file an
// operator can review, without touching the running proxy's store.
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import type { BlocklistManager } from '../policy/blocklist/manager.js';
import { proposeRules } from '../policy/learn-proposal.js';
import { LEARN_STORE_FILE, LearnStore, type LearnEntry } from '../policy/learn-store.js';
import { openBlocklistCopies, type BlocklistCopiesOptions } from './blocklist-copies.js';
import { table } from './table.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice learn list|propose [--agent NAME] [--since WHEN] [--config FILE | --state-dir DIR]

  list      print each (host, port, agent) Learn mode let through, with counts and times
  propose   print a rule file with one allow rule per host seen, for review; hosts that the
            blocklist copies on disk list are left out and named as warnings on stderr

Options:
  -a, --agent NAME     only what this agent did
      --since WHEN     only destinations seen since WHEN: a time (2026-12-01T09:00:00Z) or a
                       duration back from now (90s, 30m, 6h, 1d)
  -c, --config FILE    read the state directory from this configuration (default: $SLUICE_CONFIG)
  -s, --state-dir DIR  read ${LEARN_STORE_FILE} (and blocklists/) from DIR directly
  -h, --help           this help

Without --config or --state-dir the state directory is the one \`sluice run\` uses by default.`;

/** A time, or a duration counted back from now; null when it is neither. */
function sinceTime(text: string, now: number): number | null {
  const back = parseDuration(text);
  if (back !== null) return now - back;
  // Date.parse accepts bare numbers and other loose forms; require a date at least.
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return null;
  const time = Date.parse(text);
  return Number.isNaN(time) ? null : time;
}

async function storeFile(values: { config?: string | undefined; 'state-dir'?: string | undefined }, io: CliIo): Promise<string> {
  if (values['state-dir'] !== undefined) return join(resolve(values['state-dir']), LEARN_STORE_FILE);
  const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
  return join(loaded.stateDir, LEARN_STORE_FILE);
}

async function propose(entries: readonly LearnEntry[], values: BlocklistCopiesOptions, io: CliIo): Promise<number> {
  let manager: BlocklistManager;
  try {
    manager = await openBlocklistCopies(values, io);
  } catch (error) {
    return failure(io, 'sluice learn', error);
  }
  try {
    const set = await manager.load();
    const proposal = proposeRules(entries, (host) => {
      const match = set.match(host);
      return match === null ? null : `listed by blocklist ${match.source} (entry ${match.entry})`;
    });
    for (const { host, why } of proposal.blocked) io.err(`warning: left out ${host}: ${why}`);
    io.out(proposal.text.trimEnd());
    return EXIT.ok;
  } finally {
    await manager.stop();
  }
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        agent: { type: 'string', short: 'a' },
        since: { type: 'string' },
        config: { type: 'string', short: 'c' },
        'state-dir': { type: 'string', short: 's' },
      },
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
  const since = values.since === undefined ? -Infinity : sinceTime(values.since, Date.now());
  if (since === null) return usageFailure(io, 'sluice learn', `--since "${values.since ?? ''}" is neither a time such as 2026-12-01T09:00:00Z nor a duration such as 6h`, USAGE);
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
  const entries = store.entries().filter((entry) => (values.agent === undefined || entry.agent === values.agent) && entry.lastSeen.getTime() >= since);
  if (action === 'propose') return propose(entries, values, io);
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
