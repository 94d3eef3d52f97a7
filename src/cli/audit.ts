// `sluice audit verify|pubkey|rotate-key|export`: proves an audit chain intact and signed (exit 0
// intact, 1 at the first break, 2 on usage or I/O errors), manages its signing key, exports it.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/load.js';
import { chainFilesIn } from '../audit/reader.js';
import type { ChainHead } from '../audit/record.js';
import { createSigningKey, loadSigningKeys, NEXT_SIGNING_KEY_FILE, parsePublicKey } from '../audit/signing-key.js';
import { BREAK_REASONS, verifyChain, type VerifyOptions, type VerifyResult } from '../audit/verify.js';
import type { CliIo, Command } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = [
  'Usage: sluice audit verify [--json] [--pubkey KEY]... [--window N] [--live] [--continuation] [--anchor SEQ:SHA256] FILE...|DIR',
  '       sluice audit pubkey [--config FILE | --state-dir DIR]',
  '       sluice audit rotate-key [--config FILE | --state-dir DIR]',
  '       sluice audit export --format jsonl|csv|ocsf [--since TIME] [--until TIME] [--agent NAME] [--verdict V]',
  '                           [--from-seq N] [--dns-refuse-with refused|nxdomain] FILE...|DIR',
  '',
  'verify: checks every record of a Sluice audit chain (JSONL, SHA-256 hash chain): each record\'s',
  'hash, its canonical form, seq + 1 and prev = previous hash, starting at seq 1. Several files, or',
  'a directory of rotated files (ordered by first seq), are verified as one chain.',
  '',
  'Options:',
  '  --json          print the result as one JSON object',
  '  --pubkey KEY    a trusted checkpoint key (base64, as `sluice audit pubkey` prints it, or a file',
  '                  holding it); then every checkpoint must verify, no more than --window records',
  '                  may go unsigned, and the chain must end with its shutdown checkpoint',
  '  --window N      the writer\'s audit.checkpoint.every_records (default 1000)',
  '  --live          the chain goes on (Sluice is writing it): accept up to N unsigned records at the end',
  '  --continuation  accept a first record with any seq/prev (a file that continues another)',
  '  --anchor SEQ:SHA256',
  '                  require the record SEQ to be present with this hash (a head saved off-box',
  '                  earlier)',
  '  -h, --help      show this help',
  '',
  'Exit status: 0 chain intact, 1 chain broken, 2 usage or read error.',
  '',
  'pubkey: prints the public key that signs checkpoints (base64 of the raw Ed25519 key), creating',
  'the key if there is none yet. Give it to your auditor; they pass it to `verify --pubkey`.',
  '',
  'rotate-key: stages a new signing key and prints its public key. The next start of Sluice writes',
  'a checkpoint signed by the old key that announces the new one, then signs with the new one.',
  '',
  'export: writes the records, in chain order, as JSON lines (jsonl), CSV or OCSF 1.8.0 events',
  '(docs/ocsf.md) on stdout. --since/--until take ISO-8601 times (inclusive/exclusive); --agent and',
  '--verdict keep only records of that agent or verdict (allow, learn, deny, error); --from-seq starts at',
  'that seq; --dns-refuse-with is the dns.refuse_with the records were written under (OCSF rcode).',
].join('\n');

interface VerifyArgs {
  readonly files: readonly string[];
  readonly json: boolean;
  readonly options: VerifyOptions;
}

const ANCHOR = /^(\d{1,15}):([0-9a-fA-F]{64})$/;

export const auditCommand: Command = {
  usage: USAGE,
  async run(argv, io) {
    const [action, ...rest] = argv;
    switch (action) {
      case undefined:
        io.err(USAGE);
        return EXIT.usage;
      case 'verify':
        return verify(rest, io);
      case 'pubkey':
      case 'rotate-key':
        return manageKey(action, rest, io);
      case 'export':
        return (await import('./audit-export.js')).exportAudit(rest, io, USAGE);
      default:
        return usageFailure(io, 'sluice audit', `unknown action "${action}"`, USAGE);
    }
  },
};

async function verify(argv: readonly string[], io: CliIo): Promise<number> {
  const args = await parseVerifyArgs(argv);
  if (typeof args === 'string') return usageFailure(io, 'sluice audit verify', args, USAGE);
  let result: VerifyResult;
  let paths: string[] = [];
  try {
    paths = await chainPaths(args.files);
    result = await verifyChain(paths, args.options);
  } catch (error) {
    // Not 1, which says the chain is broken: a file that cannot be read says nothing of its chain.
    io.err(`sluice audit verify: cannot read ${args.files.join(' ')}: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.usage;
  }
  report(result, args.json, args.files.length > 1 || paths.length > 1, io);
  return result.ok ? EXIT.ok : EXIT.failed;
}

/** FILE... as given, or a single DIR's `*.jsonl` files in chain order. */
export async function chainPaths(files: readonly string[]): Promise<string[]> {
  const [only] = files;
  if (files.length === 1 && only !== undefined && (await stat(only)).isDirectory()) return (await chainFilesIn(only)).map((file) => file.path);
  return [...files];
}

async function parseVerifyArgs(argv: readonly string[]): Promise<VerifyArgs | string> {
  const files: string[] = [];
  const pubkeys: string[] = [];
  let json = false;
  let continuation = false;
  let live = false;
  let window: number | undefined;
  let anchor: ChainHead | undefined;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => {
      if (inline !== undefined) return inline;
      index += 1;
      return argv[index];
    };
    if (name === '--json') json = true;
    else if (name === '--continuation') continuation = true;
    else if (name === '--live') live = true;
    else if (name === '--anchor') {
      const text = value();
      const match = ANCHOR.exec(text ?? '');
      if (match === null || match[1] === undefined || match[2] === undefined || Number(match[1]) < 1) {
        return `--anchor expects SEQ:SHA256 (a positive seq, 64 hex digits), got "${text ?? ''}"`;
      }
      anchor = { seq: Number(match[1]), hash: match[2].toLowerCase() };
    } else if (name === '--pubkey') {
      const key = await readPublicKey(value() ?? '');
      if (key.startsWith('!')) return key.slice(1);
      pubkeys.push(key);
    } else if (name === '--window') {
      const text = value() ?? '';
      window = /^\d{1,7}$/.test(text) ? Number(text) : 0;
      if (window < 1) return `--window expects a positive number of records, got "${text}"`;
    } else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else files.push(arg);
  }
  if (files.length === 0) return 'missing FILE';
  return {
    files,
    json,
    options: {
      continuation,
      ...(anchor === undefined ? {} : { anchor }),
      ...(pubkeys.length === 0 ? {} : { pubkeys }),
      ...(window === undefined ? {} : { window }),
      ...(live ? { live } : {}),
    },
  };
}

/** The key itself, or the key read from a file; a leading "!" marks the usage error instead. */
async function readPublicKey(value: string): Promise<string> {
  const direct = parsePublicKey(value);
  if (direct !== null) return direct;
  const fromFile = await readFile(value, 'utf8').then(parsePublicKey, () => null);
  return fromFile ?? `!--pubkey expects a base64 Ed25519 public key (44 characters) or a file holding one, got "${value}"`;
}

function report(result: VerifyResult, json: boolean, severalFiles: boolean, io: CliIo): void {
  if (json) {
    io.out(JSON.stringify(result));
  } else if (result.ok) {
    io.out(`ok: ${result.records} records verified`);
    if (result.head !== null) io.out(`head: seq ${result.head.seq} sha256 ${result.head.hash}`);
    if (result.signed !== undefined) {
      io.out(result.signed === null ? 'signed: no checkpoint' : `signed: seq ${result.signed.seq} at ${result.signed.time} (${result.signed.trigger}) by ${result.signed.key}`);
      if (result.unsigned !== undefined && result.unsigned > 0) io.out(`unsigned: ${result.unsigned} record(s) after the last checkpoint`);
    }
  } else {
    const where = severalFiles ? `${result.file} line ${result.line}` : `line ${result.line}`;
    io.out(`broken at seq ${result.seq} (${where}): ${BREAK_REASONS[result.reason]}: ${result.detail}`);
  }
}

async function stateDirOf(argv: readonly string[], io: CliIo): Promise<string | { usage: string }> {
  const [flag, value, ...extra] = argv;
  if (flag === undefined) return (await loadConfig(io.env['SLUICE_CONFIG'] ?? null, placementFrom(io))).stateDir;
  if (value === undefined || extra.length > 0) return { usage: 'expected at most one of --config FILE, --state-dir DIR' };
  if (flag === '--state-dir' || flag === '-s') return resolve(value);
  if (flag === '--config' || flag === '-c') return (await loadConfig(value, placementFrom(io))).stateDir;
  return { usage: `unknown option ${flag}` };
}

async function manageKey(action: 'pubkey' | 'rotate-key', argv: readonly string[], io: CliIo): Promise<number> {
  const who = `sluice audit ${action}`;
  try {
    const stateDir = await stateDirOf(argv, io);
    if (typeof stateDir !== 'string') return usageFailure(io, who, stateDir.usage, USAGE);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    if (action === 'pubkey') {
      io.out((await loadSigningKeys(stateDir)).current.publicKey);
      return EXIT.ok;
    }
    // The current key must exist (and be readable) first: the announcement is signed with it.
    await loadSigningKeys(stateDir);
    const next = await createSigningKey(join(stateDir, NEXT_SIGNING_KEY_FILE));
    io.out(next.publicKey);
    io.err(`${who}: staged; the next start of Sluice announces this key under the current one and signs with it from then on`);
    return EXIT.ok;
  } catch (error) {
    return failure(io, who, error);
  }
}
