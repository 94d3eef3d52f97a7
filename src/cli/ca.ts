// `sluice ca export`: prints the local CA certificate agents must trust for intercepted inference
// hosts, creating the CA first when Sluice has never started, so it can be installed beforehand.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { CA_CERT_FILE, LocalCa } from '../ingress/tls/local-ca.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice ca export [--config FILE | --state-dir DIR]

  export   print the PEM certificate of the local CA Sluice signs intercepted inference hosts'
           certificates with (creating the CA in the state directory when there is none yet)

Options:
  -c, --config FILE    read the state directory from this configuration (default: $SLUICE_CONFIG)
  -s, --state-dir DIR  the CA lives in DIR/${CA_CERT_FILE} (key: DIR/ca.key, mode 0600)
  -h, --help           this help

Agents trust it with, for example:
  sluice ca export > /etc/sluice-ca.pem
  NODE_EXTRA_CA_CERTS=/etc/sluice-ca.pem   (Node.js)
  SSL_CERT_FILE=... / REQUESTS_CA_BUNDLE=...  (a bundle holding the system CAs plus this one)`;

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
    return usageFailure(io, 'sluice ca', error, USAGE);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || positionals[0] !== 'export' || (values.config !== undefined && values['state-dir'] !== undefined)) {
    return usageFailure(io, 'sluice ca', 'expected "export" and at most one of --config, --state-dir', USAGE);
  }
  try {
    const stateDir = values['state-dir'] !== undefined
      ? resolve(values['state-dir'])
      : (await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io))).stateDir;
    const { ca, created } = await LocalCa.open(stateDir);
    if (created) io.err(`sluice ca: created a new CA in ${stateDir}`);
    io.out(ca.certificatePem.trimEnd());
    return EXIT.ok;
  } catch (error) {
    return failure(io, 'sluice ca', error);
  }
}

export const caCommand: Command = { usage: USAGE, run };
