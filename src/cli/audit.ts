// `sluice audit verify FILE`: checks an audit log's hash chain for auditors and scripts; exit 0
// when intact, 1 at the first break, 2 on usage or I/O errors.
import { BREAK_REASONS, verifyChain, type VerifyResult } from '../audit/verify.js';
import type { CliIo, Command } from './command.js';

const USAGE = [
  'Usage: sluice audit verify [--json] [--continuation] FILE',
  '',
  'Verifies every record of a Sluice audit log (JSONL, SHA-256 hash chain): each record\'s hash,',
  'its canonical form, seq + 1 and prev = previous hash, starting at seq 1.',
  '',
  'Options:',
  '  --json          print the result as one JSON object',
  '  --continuation  accept a first record with any seq/prev (a file that continues another)',
  '  -h, --help      show this help',
  '',
  'Exit status: 0 chain intact, 1 chain broken, 2 usage or read error.',
  'A chain cannot show that records were cut off its END: compare the printed head hash with a',
  'copy kept off the machine.',
].join('\n');

interface VerifyArgs {
  readonly file: string;
  readonly json: boolean;
  readonly continuation: boolean;
}

export const auditCommand: Command = {
  name: 'audit',
  summary: 'verify the hash chain of an audit log',
  usage: USAGE,
  async run(argv, io) {
    const [action, ...rest] = argv;
    if (action !== 'verify') {
      io.err(action === undefined ? USAGE : `sluice audit: unknown action "${action}"\n\n${USAGE}`);
      return 2;
    }
    const args = parseVerifyArgs(rest);
    if (typeof args === 'string') {
      io.err(`sluice audit verify: ${args}\n\n${USAGE}`);
      return 2;
    }
    let result: VerifyResult;
    try {
      result = await verifyChain(args.file, { continuation: args.continuation });
    } catch (error) {
      io.err(`sluice audit verify: cannot read ${args.file}: ${error instanceof Error ? error.message : String(error)}`);
      return 2;
    }
    report(result, args.json, io);
    return result.ok ? 0 : 1;
  },
};

function parseVerifyArgs(argv: readonly string[]): VerifyArgs | string {
  const files: string[] = [];
  let json = false;
  let continuation = false;
  for (const arg of argv) {
    if (arg === '--json') json = true;
    else if (arg === '--continuation') continuation = true;
    else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else files.push(arg);
  }
  const [file, ...extra] = files;
  if (file === undefined) return 'missing FILE';
  if (extra.length > 0) return `one FILE expected, got ${files.length}`;
  return { file, json, continuation };
}

function report(result: VerifyResult, json: boolean, io: CliIo): void {
  if (json) {
    io.out(JSON.stringify(result));
  } else if (result.ok) {
    io.out(`ok: ${result.records} records verified`);
    if (result.head !== null) io.out(`head: seq ${result.head.seq} sha256 ${result.head.hash}`);
  } else {
    io.out(`broken at seq ${result.seq} (line ${result.line}): ${BREAK_REASONS[result.reason]}: ${result.detail}`);
  }
}
