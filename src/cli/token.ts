// `sluice token create|list|revoke`: manages admin API tokens in the state directory directly, so
// the first token can be made before anyone can log in; the running Sluice picks changes up itself.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { isRole, ROLES } from '../admin/roles.js';
import { createToken, readTokenFile, revokeToken, TOKEN_NAME, tokenFile } from '../admin/tokens.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice token create --name NAME --role viewer|approver|admin [--config FILE]
       sluice token list [--config FILE]
       sluice token revoke NAME [--config FILE]

  create   make a token for the admin API; it is printed once, alone on the last line of
           stdout, and only its SHA-256 is kept (STATE_DIR/admin-tokens.json)
  list     the tokens in the state directory and the config: name, role, created
  revoke   remove a token from the state directory; it stops working at its next use

Roles: viewer reads; approver also grants and revokes approvals; admin also manages tokens
and agent modes. A running Sluice takes changes up without a restart and audits them.

Options:
  -c, --config FILE   the configuration naming the state directory (default: $SLUICE_CONFIG)
      --name NAME     1-64 characters of A-Z a-z 0-9 _ . -
      --role ROLE     viewer, approver or admin
  -h, --help          this help`;

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { config: { type: 'string', short: 'c' }, name: { type: 'string' }, role: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice token', error, USAGE);
  }
  const { values, positionals } = parsed;
  const [action, target, ...extra] = positionals;
  if (extra.length > 0) return usageFailure(io, 'sluice token', `unexpected argument "${extra[0]}"`, USAGE);
  try {
    const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
    const file = tokenFile(loaded.stateDir);
    switch (action) {
      case 'create': {
        const { name, role } = values;
        if (name === undefined || !TOKEN_NAME.test(name)) return usageFailure(io, 'sluice token create', '--name NAME is required (1-64 of A-Z a-z 0-9 _ . -)', USAGE);
        if (!isRole(role)) return usageFailure(io, 'sluice token create', `--role must be one of ${ROLES.join(', ')}`, USAGE);
        if (loaded.config.admin.tokens.some((token) => token.name === name)) throw new Error(`a token named "${name}" is in the config (admin.tokens) already`);
        const token = await createToken(file, name, role, new Date());
        io.err(`sluice token: created "${name}" (${role}) in ${file}; it is shown once, below`);
        io.out(token);
        return EXIT.ok;
      }
      case 'list': {
        const rows = [
          ...loaded.config.admin.tokens.map((token) => [token.name, token.role, '-', 'config']),
          ...(await readTokenFile(file)).map((token) => [token.name, token.role, token.created ?? '-', 'state']),
        ];
        io.out(['NAME', 'ROLE', 'CREATED', 'SOURCE'].join('\t'));
        for (const row of rows) io.out(row.join('\t'));
        return EXIT.ok;
      }
      case 'revoke': {
        if (target === undefined) return usageFailure(io, 'sluice token revoke', 'name the token to revoke', USAGE);
        if (!(await revokeToken(file, target))) {
          const inConfig = loaded.config.admin.tokens.some((token) => token.name === target);
          io.err(`sluice token: ${inConfig ? `"${target}" comes from the config (admin.tokens); remove it there` : `no token named "${target}" in ${file}`}`);
          return EXIT.failed;
        }
        io.err(`sluice token: revoked "${target}"`);
        return EXIT.ok;
      }
      default:
        return usageFailure(io, 'sluice token', 'expected create, list or revoke', USAGE);
    }
  } catch (error) {
    return failure(io, 'sluice token', error);
  }
}

export const tokenCommand: Command = { usage: USAGE, run };
