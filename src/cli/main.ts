#!/usr/bin/env node
// Entry point of the `sluice` command: routes to a subcommand and turns its result into an
// exit code. Subcommands register in COMMANDS below; each module is loaded only to run it.
import type { CliIo, CommandEntry } from './command.js';
import { wantsHelp } from './command.js';
import { EXIT, usageFailure } from './exit.js';
import { VERSION } from '../config/version.js';

const COMMANDS: readonly CommandEntry[] = [
  { name: 'run', summary: 'start the proxy (default config if no --config)', load: async () => (await import('./run.js')).runCommand },
  { name: 'check', summary: 'validate configuration and rule files, reporting every error with its line', load: async () => (await import('./check.js')).checkCommand },
  { name: 'audit', summary: 'verify the hash chain of an audit log', load: async () => (await import('./audit.js')).auditCommand },
  { name: 'bundle', summary: 'verify, sign and make keys for signed allowlist bundles', load: async () => (await import('./bundle.js')).bundleCommand },
  { name: 'nft', summary: 'render, apply or remove the nftables guard for agent users', load: async () => (await import('./nft.js')).nftCommand },
  { name: 'learn', summary: 'list what Learn mode recorded, or propose allow rules from it', load: async () => (await import('./learn.js')).learnCommand },
  { name: 'approve', summary: 'let an agent reach a host for a limited time, through the running Sluice', load: async () => (await import('./approve.js')).approveCommand },
  { name: 'approvals', summary: 'list the approvals in force', load: async () => (await import('./approve.js')).approvalsCommand },
  { name: 'requests', summary: 'list or deny the access requests agents raised in Strict mode', load: async () => (await import('./requests.js')).requestsCommand },
  { name: 'revoke', summary: 'end an approval now, closing the tunnels it let through', load: async () => (await import('./approve.js')).revokeCommand },
  { name: 'explain', summary: 'say what the running Sluice would decide for an agent and host, and why', load: async () => (await import('./explain.js')).explainCommand },
  { name: 'mode', summary: 'switch an agent between Learn and Strict while Sluice runs', load: async () => (await import('./explain.js')).modeCommand },
  { name: 'token', summary: 'create, list or revoke admin API tokens (works while Sluice is stopped)', load: async () => (await import('./token.js')).tokenCommand },
  { name: 'budget', summary: 'show inference token budgets per agent: limits, used, remaining, resets', load: async () => (await import('./budget.js')).budgetCommand },
  { name: 'ca', summary: 'print the local CA certificate agents trust for intercepted inference hosts', load: async () => (await import('./ca.js')).caCommand },
  {
    name: 'blocklist',
    summary: 'check whether a host is on a malicious-domain blocklist; refresh the feeds',
    load: async () => (await import('./blocklist.js')).blocklistCommand,
  },
];

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
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (argv.includes('--version') || argv.includes('-V')) {
    io.out(VERSION);
    return EXIT.ok;
  }
  const entry = COMMANDS.find((candidate) => candidate.name === name);
  if (entry === undefined) return usageFailure(io, 'sluice', `unknown command "${name}"`, overview());
  const command = await entry.load();
  if (wantsHelp(rest)) {
    io.out(command.usage);
    return EXIT.ok;
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
