// Opens the blocklist copies on disk the way the running proxy would find them, for commands that
// read them offline (`sluice blocklist`, `sluice learn propose`); downloads nothing by itself.
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { PACKAGE_ROOT } from '../config/package-root.js';
import { loadParentProxies } from '../connect/index.js';
import { createLogger } from '../obs/log.js';
import { BlocklistManager } from '../policy/blocklist/manager.js';
import { loadBlocklistConfig } from '../policy/blocklist/sources.js';
import type { CliIo } from './command.js';
import { placementFrom } from './placement.js';

export interface BlocklistCopiesOptions {
  readonly config?: string | undefined;
  readonly 'state-dir'?: string | undefined;
  readonly sources?: string | undefined;
}

export async function openBlocklistCopies(values: BlocklistCopiesOptions, io: CliIo): Promise<BlocklistManager> {
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
