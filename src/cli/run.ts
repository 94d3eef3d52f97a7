// `sluice run`: start the proxy on a config file (or the embedded default) and run until
// SIGINT/SIGTERM, closing listeners and flushing the audit chain on the way out.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import type { Sluice } from '../app.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../obs/log.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice run [--config FILE]

Starts the forward proxy and the admin listener.
Without --config, the embedded default applies: proxy on 127.0.0.1:3128, admin (metrics,
/healthz, /readyz) on 127.0.0.1:9090, Learn mode, the rule files in the package's rules/ folder,
state (audit chain, Learn records) in var/ of the checkout, /var/lib/sluice when installed as
root, or $XDG_STATE_HOME/sluice. SLUICE_STATE_DIR overrides the state directory.
SIGHUP re-reads the rule files and the blocklist copies on disk; SIGINT/SIGTERM stop.
With workers: N (or auto) in the config, N proxy worker processes share the listener.

Options:
  -c, --config FILE   configuration file (YAML); see examples/sluice.yaml
  -h, --help          this help`;

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let values: { config?: string | undefined };
  try {
    ({ values } = parseArgs({ args: [...argv], options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (error) {
    return usageFailure(io, 'sluice run', error, USAGE);
  }
  let loaded;
  try {
    loaded = await loadConfig(values.config ?? null, placementFrom(io));
  } catch (error) {
    return failure(io, 'sluice run', error);
  }
  const log = createLogger(loaded.config.log.level);
  // A cluster worker re-runs this command: it builds the proxy and takes orders from the primary.
  // Imported alone, so a worker does not load the admin API, bundles and audit writer it never runs.
  if (cluster.isWorker) {
    try {
      const { startWorker } = await import('../cluster/worker.js');
      await startWorker(loaded, log);
    } catch (error) {
      log.error({ err: error }, 'proxy worker could not start');
      log.flush(() => process.exit(1));
    }
    return EXIT.ok;
  }
  // The handlers go in before start: "sluice started" is logged inside start, and a supervisor
  // (or a test) that signals on that line must get a clean stop, not Node's default death.
  let sluice: Pick<Sluice, 'close' | 'reload'> | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  const shutDown = (running: Pick<Sluice, 'close'>): void => {
    running.close().then(
      () => log.flush(() => process.exit(0)),
      (error: unknown) => {
        log.error({ err: error }, 'unclean stop');
        log.flush(() => process.exit(1));
      },
    );
  };
  const stop = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) return;
    stopSignal = signal;
    log.info({ signal }, 'stopping');
    if (sluice !== undefined) shutDown(sluice);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // systemctl reload: re-read rule files and blocklist copies without dropping a connection.
  // While starting, the files are being read anyway.
  const reload = (): void => {
    sluice?.reload().catch((error: unknown) => log.error({ err: error }, 'reload failed'));
  };
  process.on('SIGHUP', reload);
  try {
    const { workerCount, SluiceCluster } = await import('../cluster/primary.js');
    const workers = workerCount(loaded.config);
    sluice = workers > 1 ? await SluiceCluster.start(loaded, log, workers) : await (await import('../app.js')).Sluice.start(loaded, { log });
  } catch (error) {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    process.removeListener('SIGHUP', reload);
    return failure(io, 'sluice: cannot start', error);
  }
  // A signal that came while starting stops it as soon as it is up.
  if (stopSignal !== undefined) shutDown(sluice);
  return EXIT.ok;
}

export const runCommand: Command = { usage: USAGE, run };
