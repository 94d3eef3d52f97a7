// `sluice blocklist check HOST | refresh`: says whether and why a host is blocked, from the
// copies on disk, and forces a download of every feed into those copies.
import { parseArgs } from 'node:util';
import { normaliseHost } from '../destination.js';
import { isSluiceError } from '../errors.js';
import type { BlocklistManager } from '../policy/blocklist/manager.js';
import { openBlocklistCopies } from './blocklist-copies.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';

const USAGE = `Usage: sluice blocklist check HOST [options]
       sluice blocklist refresh [options]

  check HOST   say whether HOST (a name or an IP address) is blocked, and by which source and
               entry, using the copies on disk (downloads nothing)
  refresh      download every enabled source now; accepted downloads replace the copies on disk,
               which a running proxy picks up on reload (SIGHUP: systemctl reload sluice)

Options:
  -c, --config FILE     read the state directory and sources file from this configuration
                        (default: $SLUICE_CONFIG, else the built-in defaults)
  -s, --state-dir DIR   state directory (the copies live in DIR/blocklists)
  -b, --sources FILE    sources.yaml to use (default: the config's "blocklists", else the
                        installation's blocklists/sources.yaml)
      --accept-shrink   refresh: accept a download even when it shrinks a source by more than
                        its max_shrink (after checking the feed is really meant to be smaller)
  -h, --help            this help

Exit status: check 0 = not blocked, 1 = blocked; refresh 0 = every source updated or unchanged,
1 = some source failed or was refused; both 1 = unreadable configuration (stderr says which),
2 = bad usage or a HOST that is not a host name or address.`;

async function check(manager: BlocklistManager, host: string, io: CliIo): Promise<number> {
  let normalised: string;
  try {
    normalised = normaliseHost(host).host;
  } catch (error) {
    if (!isSluiceError(error)) throw error;
    return usageFailure(io, 'sluice blocklist', error, USAGE);
  }
  const set = await manager.load();
  for (const source of manager.status()) {
    if (source.fetchedAt === null) io.err(`warning: source ${source.source} has no copy on disk yet; run \`sluice blocklist refresh\``);
  }
  const match = set.match(normalised);
  if (match !== null) {
    io.out(`blocked: ${normalised} is listed by ${match.source} (entry ${match.entry})`);
    return EXIT.failed;
  }
  const exception = set.exceptionFor(normalised);
  io.out(exception === null ? `not blocked: ${normalised} is on no blocklist` : `not blocked: ${normalised} is covered by the allow-exception ${exception}`);
  return EXIT.ok;
}

async function refresh(manager: BlocklistManager, acceptShrink: boolean, io: CliIo): Promise<number> {
  await manager.load();
  const reports = await manager.refreshAll({ acceptShrink });
  for (const report of reports) {
    const detail = report.detail === undefined ? '' : `: ${report.detail}`;
    io.out(`${report.source}: ${report.outcome.replace('_', ' ')}, ${report.entries} entries${detail}`);
  }
  return reports.every((report) => report.outcome === 'updated' || report.outcome === 'not_modified') ? EXIT.ok : EXIT.failed;
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        'state-dir': { type: 'string', short: 's' },
        sources: { type: 'string', short: 'b' },
        'accept-shrink': { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice blocklist', error, USAGE);
  }
  const { values, positionals } = parsed;
  const [action, host] = positionals;
  const valid = (action === 'check' && positionals.length === 2) || (action === 'refresh' && positionals.length === 1);
  if (!valid || host === '') return usageFailure(io, 'sluice blocklist', 'expected "check HOST" or "refresh"', USAGE);
  let manager: BlocklistManager;
  try {
    manager = await openBlocklistCopies(values, io);
  } catch (error) {
    return failure(io, 'sluice blocklist', error);
  }
  try {
    return action === 'check' && host !== undefined ? await check(manager, host, io) : await refresh(manager, values['accept-shrink'] === true, io);
  } finally {
    await manager.stop();
  }
}

export const blocklistCommand: Command = {
  usage: USAGE,
  run,
};
