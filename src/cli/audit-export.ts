// `sluice audit export`: writes an audit chain's records, filtered, as JSON lines, CSV or OCSF
// events on stdout, streaming, so a year of rotated files never sits in memory.
import { chainFilesIn, readRecords, type ChainFile } from '../audit/reader.js';
import { CSV_COLUMNS, csvRecord, csvRow, passes, toOcsf, type ExportFilter, type ExportFormat } from '../audit/export.js';
import { stat } from 'node:fs/promises';
import type { CliIo } from './command.js';
import { EXIT, failure, usageFailure } from './exit.js';
import { VERSION } from '../config/version.js';

interface ExportArgs {
  readonly format: ExportFormat;
  readonly filter: ExportFilter;
  readonly fromSeq: number;
  readonly dnsRefuseWith: 'refused' | 'nxdomain';
  readonly paths: readonly string[];
}

const FORMATS: readonly ExportFormat[] = ['jsonl', 'csv', 'ocsf'];
const VERDICTS = ['allow', 'learn', 'deny', 'error'];

export async function exportAudit(argv: readonly string[], io: CliIo, usage: string): Promise<number> {
  const args = parseExportArgs(argv);
  if (typeof args === 'string') return usageFailure(io, 'sluice audit export', args, usage);
  try {
    const files = await filesOf(args.paths);
    if (args.format === 'csv') io.out(csvRow(CSV_COLUMNS));
    for await (const { record } of readRecords(files, args.fromSeq)) {
      if (!passes(record, args.filter)) continue;
      if (args.format === 'jsonl') io.out(JSON.stringify(record));
      else if (args.format === 'csv') io.out(csvRecord(record));
      else for (const event of toOcsf(record, { productVersion: VERSION, dnsRefuseWith: args.dnsRefuseWith })) io.out(JSON.stringify(event));
    }
    return EXIT.ok;
  } catch (error) {
    return failure(io, 'sluice audit export', error);
  }
}

/** A DIR's `*.jsonl` files in chain order, or the FILEs as given. */
async function filesOf(paths: readonly string[]): Promise<ChainFile[]> {
  const [only] = paths;
  if (paths.length === 1 && only !== undefined && (await stat(only)).isDirectory()) return chainFilesIn(only);
  // readRecords skips files by their first seq; explicit files are read whole, in the order given.
  return paths.map((path) => ({ path, firstSeq: null, bytes: 0, modified: new Date(0) }));
}

function parseExportArgs(argv: readonly string[]): ExportArgs | string {
  let format: ExportFormat | undefined;
  const filter: { since?: number; until?: number; agent?: string; verdict?: string } = {};
  let fromSeq = 1;
  let dnsRefuseWith: 'refused' | 'nxdomain' = 'refused';
  const paths: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const value = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      index += 1;
      return argv[index] ?? '';
    };
    if (name === '--format') {
      const text = value();
      if (!FORMATS.includes(text as ExportFormat)) return `--format expects jsonl, csv or ocsf, got "${text}"`;
      format = text as ExportFormat;
    } else if (name === '--since' || name === '--until') {
      const text = value();
      const time = Date.parse(text);
      if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(time)) return `${name} expects an ISO-8601 time such as 2026-11-23T00:00:00Z, got "${text}"`;
      filter[name === '--since' ? 'since' : 'until'] = time;
    } else if (name === '--agent') {
      filter.agent = value();
    } else if (name === '--verdict') {
      const text = value();
      if (!VERDICTS.includes(text)) return `--verdict expects one of ${VERDICTS.join(', ')}, got "${text}"`;
      filter.verdict = text;
    } else if (name === '--from-seq') {
      const text = value();
      fromSeq = /^\d{1,15}$/.test(text) ? Number(text) : 0;
      if (fromSeq < 1) return `--from-seq expects a positive seq, got "${text}"`;
    } else if (name === '--dns-refuse-with') {
      const text = value();
      if (text !== 'refused' && text !== 'nxdomain') return `--dns-refuse-with expects refused or nxdomain, got "${text}"`;
      dnsRefuseWith = text;
    } else if (arg.startsWith('-')) return `unknown option ${arg}`;
    else paths.push(arg);
  }
  if (format === undefined) return 'missing --format jsonl|csv|ocsf';
  if (paths.length === 0) return 'missing FILE or DIR';
  return { format, filter, fromSeq, dnsRefuseWith, paths };
}
