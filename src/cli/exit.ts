// How every `sluice` command ends when it cannot do its job: what goes to stderr, and one exit
// status per kind of failure, so a bad config means the same to a script whichever command read it.
import { formatIssue, SourceError } from '../config/yaml.js';
import { isOperatorError, isSluiceError } from '../errors.js';
import type { CliIo } from './command.js';

/** 0 done; 1 failed (a bad config among the reasons) or the command's negative answer; 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Bad arguments: the reason and the command's help, exit 2. */
export function usageFailure(io: CliIo, who: string, reason: unknown, usage: string): number {
  io.err(`${who}: ${messageOf(reason)}\n\n${usage}`);
  return EXIT.usage;
}

/**
 * Anything else that stopped the command, exit 1: a file that does not validate as one
 * file:line:column line per problem; any other error as its message, followed by its code when it
 * is one of Sluice's (`docs/errors.md`); a system error's message names its errno already.
 */
export function failure(io: CliIo, who: string, error: unknown): number {
  if (error instanceof SourceError) {
    for (const issue of error.issues) io.err(formatIssue(issue));
    return EXIT.failed;
  }
  const code = isSluiceError(error) || isOperatorError(error) ? ` [${error.code}]` : '';
  io.err(`${who}: ${messageOf(error)}${code}`);
  return EXIT.failed;
}
