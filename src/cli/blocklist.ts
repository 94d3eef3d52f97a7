// `sluice blocklist check HOST | refresh`: says whether and why a host is blocked, from the
// copies on disk, and forces a download of every feed into those copies.
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { PACKAGE_ROOT } from '../config/package-root.js';
import { loadParentProxies } from '../connect/index.js';
import { normaliseHost } from '../destination.js';
import { isSluiceError } from '../errors.js';
import { createLogger } from '../obs/log.js';
import { BlocklistManager } from '../policy/blocklist/manager.js';
import { loadBlocklistConfig } from '../policy/blocklist/sources.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

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

interface Options {
  readonly config?: string | undefined;
  readonly 'state-dir'?: string | undefined;
  readonly sources?: string | undefined;
}

async function open(values: Options, io: CliIo): Promise<BlocklistManager> {
  const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
  const paths = { sourcesFile: loaded.blocklistSources, cacheDir: loaded.blocklistCacheDir };
  const cacheDir = values['state-dir'] === undefined ? paths.cacheDir : join(resolve(values['state-dir']), 'blocklists');
  const config = await loadBlocklistConfig(values.sources === undefined ? paths.sourcesFile : resolve(values.sources));
  // Warnings (malformed local lines, failed downloads) as plain lines rather than JSON.
  const logger = createLogger('info', {
    write: (line: string) => {
      const record = JSON.parse(line) as { level?: number; msg?: string; problem?: string };
      if ((record.level ?? 0) >= 40) io.err(`warning: ${record.problem ?? record.msg ?? line}`);
    },
  });
  // Feeds go through the same parent proxies as in the running proxy (connect.upstream_proxy).
  const parents = await loadParentProxies(loaded.config.connect, { baseDir: loaded.file === null ? PACKAGE_ROOT : dirname(loaded.file), env: io.env });
  return new BlocklistManager({ config, cacheDir, logger, parents });
}

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
    manager = await open(values, io);
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
