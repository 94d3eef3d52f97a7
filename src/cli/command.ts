// The contract every `sluice` subcommand implements, so main.ts can list, route and document them.

export interface CliIo {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** full help text, printed for `sluice NAME --help` */
  readonly usage: string;
  /** returns the process exit code */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/** True when argv asks for help; every subcommand honours -h/--help the same way. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
