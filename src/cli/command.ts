// The contract every `sluice` subcommand implements, so main.ts can list, route and document them,
// and load each only when it runs.

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  /** full help text, printed for `sluice NAME --help` */
  readonly usage: string;
  /** returns the process exit code */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/**
 * What the overview needs of a command without loading it: each command's module pulls in the
 * stages it drives (the proxy, sigstore, nftables), so it is imported only when that command runs.
 */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

/** True when argv asks for help; every subcommand honours -h/--help the same way. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
