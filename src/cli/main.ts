#!/usr/bin/env node
// Entry point of the `sluice` command: routes to a subcommand and turns its result into an
// exit code. Subcommands register in COMMANDS below.
import type { CliIo, Command } from './command.js';
import { wantsHelp } from './command.js';
import { usageFailure } from './exit.js';
import { VERSION } from './version.js';
import { runCommand } from './run.js';
import { checkCommand } from './check.js';
import { auditCommand } from './audit.js';
import { nftCommand } from './nft.js';
import { bundleCommand } from './bundle.js';
import { learnCommand } from './learn.js';
import { blocklistCommand } from './blocklist.js';

const COMMANDS: readonly Command[] = [runCommand, checkCommand, auditCommand, bundleCommand, nftCommand, learnCommand, blocklistCommand];

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    `sluice ${VERSION}: egress proxy for AI agents`,
    '',
    'Usage: sluice COMMAND [options]',
    '',
    'Commands:',
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    '',
    'Options everywhere: --help, --version',
    'Run `sluice COMMAND --help` for a command\'s options.',
  ].join('\n');
}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(overview());
    return name === undefined ? 2 : 0;
  }
  if (argv.includes('--version') || argv.includes('-V')) {
    io.out(VERSION);
    return 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) return usageFailure(io, 'sluice', `unknown command "${name}"`, overview());
  if (wantsHelp(rest)) {
    io.out(command.usage);
    return 0;
  }
  return command.run(rest, io);
}

const io: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

main(process.argv.slice(2), io).then(
  (code) => {
    // `run` keeps the process alive with its servers; every other command ends here.
    if (code !== 0 || process.argv[2] !== 'run') process.exitCode = code;
  },
  (error: unknown) => {
    io.err(`sluice: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
