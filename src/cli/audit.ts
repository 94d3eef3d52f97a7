// `sluice audit verify FILE`: checks an audit log's hash chain for auditors and scripts; exit 0
// when intact, 1 at the first break, 2 on usage or I/O errors.
import type { ChainHead } from '../audit/record.js';
import { BREAK_REASONS, verifyChain, type VerifyOptions, type VerifyResult } from '../audit/verify.js';
import type { CliIo, Command } from './command.js';
import { EXIT, usageFailure } from './exit.js';

const USAGE = [
  'Usage: sluice audit verify [--json] [--continuation] [--anchor SEQ:SHA256] FILE',
  '',
  'Verifies every record of a Sluice audit log (JSONL, SHA-256 hash chain): each record\'s hash,',
  'its canonical form, seq + 1 and prev = previous hash, starting at seq 1.',
  '',
  'Options:',
  '  --json          print the result as one JSON object',
  '  --continuation  accept a first record with any seq/prev (a file that continues another)',
  '  --anchor SEQ:SHA256',
  '                  require the record SEQ to be present with this hash (a head saved off-box',
  '                  earlier): the only way to detect records cut off the end',
  '  -h, --help      show this help',
  '',
  'Exit status: 0 chain intact, 1 chain broken, 2 usage or read error.',
  'A chain alone cannot show that records were cut off its END: keep the printed head off the',
  'machine and pass it back with --anchor.',
].join('\n');

interface VerifyArgs {
  readonly file: string;
  readonly json: boolean;
  readonly options: VerifyOptions;
}

const ANCHOR = /^(\d{1,15}):([0-9a-fA-F]{64})$/;

export const auditCommand: Command = {
  usage: USAGE,
  async run(argv, io) {
    const [action, ...rest] = argv;
    if (action === undefined) {
      io.err(USAGE);
      return EXIT.usage;
    }
    if (action !== 'verify') return usageFailure(io, 'sluice audit', `unknown action "${action}"`, USAGE);
    const args = parseVerifyArgs(rest);
    if (typeof args === 'string') return usageFailure(io, 'sluice audit verify', args, USAGE);
    let result: VerifyResult;
    try {
      result = await verifyChain(args.file, args.options);
    } catch (error) {
      // Not 1, which says the chain is broken: a file that cannot be read says nothing of its chain.
      io.err(`sluice audit verify: cannot read ${args.file}: ${error instanceof Error ? error.message : String(error)}`);
      return EXIT.usage;
    }
    report(result, args.json, io);
    return result.ok ? EXIT.ok : EXIT.failed;
  },
};

function parseVerifyArgs(argv: readonly string[]): VerifyArgs | string {
  const files: string[] = [];
  let json = false;
  let continuation = false;
  let anchor: ChainHead | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === '--json') json = true;
    else if (arg === '--continuation') continuation = true;
    else if (arg === '--anchor' || arg.startsWith('--anchor=')) {
      let value: string | undefined;
      if (arg === '--anchor') {
        index += 1;
        value = argv[index];
      } else {
        value = arg.slice('--anchor='.length);
      }
      const match = ANCHOR.exec(value ?? '');
      if (match === null || match[1] === undefined || match[2] === undefined || Number(match[1]) < 1) {
        return `--anchor expects SEQ:SHA256 (a positive seq, 64 hex digits), got "${value ?? ''}"`;
      }
      anchor = { seq: Number(match[1]), hash: match[2].toLowerCase() };
    } else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else files.push(arg);
  }
  const [file, ...extra] = files;
  if (file === undefined) return 'missing FILE';
  if (extra.length > 0) return `one FILE expected, got ${files.length}`;
  return { file, json, options: anchor === undefined ? { continuation } : { continuation, anchor } };
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
