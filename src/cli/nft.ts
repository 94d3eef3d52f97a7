// `sluice nft render|apply|remove`: prints, loads or removes the nftables guard that confines
// agent users to Sluice.
import { loadConfig } from '../config/load.js';
import { runNft } from '../guard/apply.js';
import { REMOVAL, renderRuleset } from '../guard/render.js';
import { guardSpecFromConfig } from '../guard/spec.js';
import { requireSluiceUser } from '../guard/user.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice nft render|apply|remove [-c FILE] [--check] [--nft PATH]

  render   print the table inet sluice ruleset generated from the config
  apply    load it atomically (nft -f), replacing any earlier version
  remove   delete the table; agents are then no longer confined

Options:
  -c, --config FILE  sluice.yaml to read (default: $SLUICE_CONFIG, else the built-in defaults)
  --check            with apply/remove: validate with nft -c without changing anything
  --nft PATH         the nft binary (default: nft from PATH)

The rules stay loaded when Sluice stops: agents then reach nothing (fail closed).`;

interface NftArgs {
  readonly action: string;
  readonly config: string | null;
  readonly check: boolean;
  readonly binary: string;
}

function parseArgs(argv: readonly string[], io: CliIo): NftArgs | string {
  let action: string | undefined;
  let config: string | null = io.env['SLUICE_CONFIG'] ?? null;
  let check = false;
  let binary = 'nft';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--check') check = true;
    else if (arg === '--config' || arg === '-c' || arg === '--nft') {
      const value = argv[++i];
      if (value === undefined) return `${arg} needs a value`;
      if (arg === '--nft') binary = value;
      else config = value;
    } else if (arg !== undefined && !arg.startsWith('-') && action === undefined) action = arg;
    else return `unexpected argument "${String(arg)}"`;
  }
  if (action === undefined) return 'missing action: render, apply or remove';
  return { action, config, check, binary };
}

async function ruleset(configFile: string | null, io: CliIo): Promise<string> {
  const { config, file } = await loadConfig(configFile, placementFrom(io));
  const spec = guardSpecFromConfig(config);
  // Checked for render too: the printed ruleset would not load on this host either.
  await requireSluiceUser(spec.sluiceUser, file);
  if (spec.agentUids.length === 0 && spec.agentGids.length === 0) {
    io.err('sluice nft: warning: no agent uids or gids in the config, so the guard confines nobody');
  }
  return renderRuleset(spec);
}

export const nftCommand: Command = {
  usage: USAGE,
  async run(argv, io) {
    const args = parseArgs(argv, io);
    if (typeof args === 'string') return usageFailure(io, 'sluice nft', args, USAGE);
    try {
      switch (args.action) {
        case 'render':
          io.out((await ruleset(args.config, io)).trimEnd());
          return EXIT.ok;
        case 'apply':
          await runNft(await ruleset(args.config, io), { binary: args.binary, checkOnly: args.check });
          io.err(args.check ? 'sluice nft: ruleset is valid' : 'sluice nft: table inet sluice loaded');
          return EXIT.ok;
        case 'remove':
          await runNft(REMOVAL, { binary: args.binary, checkOnly: args.check });
          io.err('sluice nft: table inet sluice removed');
          return EXIT.ok;
        default:
          return usageFailure(io, 'sluice nft', `unknown action "${args.action}"`, USAGE);
      }
    } catch (error) {
      return failure(io, 'sluice nft', error);
    }
  },
};
