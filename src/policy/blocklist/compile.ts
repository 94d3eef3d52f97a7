// Turns a feed's text, fed in chunks as it arrives, into a compiled list: a domain table, the IP
// literals it names, and a count (with the first few examples) of malformed lines.
import { OperatorError } from '../../errors.js';
import { DomainTable, DomainTableBuilder, type DomainTableData } from './domain-table.js';
import { LINE_READERS, type BlocklistFormat, type LineResult } from './formats.js';
import { normaliseEntry } from './normalise.js';

export interface MalformedLine {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

export interface CompiledListData {
  readonly names: DomainTableData;
  readonly ips: readonly string[];
  /** distinct names plus distinct IPs */
  readonly entries: number;
  readonly malformed: number;
  readonly malformedExamples: readonly MalformedLine[];
}

export interface CompiledList {
  readonly names: DomainTable;
  readonly ips: ReadonlySet<string>;
  readonly entries: number;
  readonly malformed: number;
  readonly malformedExamples: readonly MalformedLine[];
}

export function openCompiledList(data: CompiledListData): CompiledList {
  return { names: new DomainTable(data.names), ips: new Set(data.ips), entries: data.entries, malformed: data.malformed, malformedExamples: data.malformedExamples };
}

export interface CompileLimits {
  readonly maxEntries: number;
  /**
   * Whether a single-label name (`com`, `zip`) may be listed. Off for downloaded feeds: one such
   * line, by mistake or from a poisoned feed, would deny a whole top-level domain.
   */
  readonly topLevelNames: boolean;
}

const MAX_EXAMPLES = 5;
const MAX_EXAMPLE_TEXT = 120;

export class ListCompiler {
  private readonly read: (line: string) => LineResult;
  private readonly names = new DomainTableBuilder();
  private readonly ips = new Set<string>();
  private pending = '';
  private lineNumber = 0;
  private malformed = 0;
  private readonly examples: MalformedLine[] = [];

  constructor(
    format: BlocklistFormat,
    private readonly limits: CompileLimits,
  ) {
    this.read = LINE_READERS[format];
  }

  /** Feeds decoded text; a line split across chunks is joined before it is read. */
  push(text: string): void {
    const buffer = this.pending + text;
    let start = 0;
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n', start)) {
      this.line(buffer.slice(start, newline));
      start = newline + 1;
    }
    this.pending = buffer.slice(start);
  }

  finish(): CompiledListData {
    if (this.pending !== '') this.line(this.pending);
    this.pending = '';
    return {
      names: this.names.finish(),
      ips: [...this.ips],
      entries: this.names.size + this.ips.size,
      malformed: this.malformed,
      malformedExamples: this.examples,
    };
  }

  private line(raw: string): void {
    this.lineNumber++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const result = this.read(text);
    if (result.kind === 'skip') return;
    if (result.kind === 'bad') return this.bad(text, result.reason);
    for (const host of result.hosts) {
      const entry = normaliseEntry(host);
      if (typeof entry === 'string') {
        this.bad(text, entry);
        continue;
      }
      if (entry.kind !== 'name') this.ips.add(entry.host);
      else if (this.limits.topLevelNames || entry.host.includes('.')) this.names.add(entry.host);
      else this.bad(text, 'a single-label name would block a whole top-level domain (list it in local.txt if meant)');
      // Refused whole, never truncated: a list cut short would silently drop entries.
      if (this.names.size + this.ips.size > this.limits.maxEntries) throw new OperatorError('BLOCKLIST_ENTRY_CAP', `more than ${this.limits.maxEntries} entries`);
    }
  }

  private bad(text: string, reason: string): void {
    this.malformed++;
    if (this.examples.length < MAX_EXAMPLES) this.examples.push({ line: this.lineNumber, text: text.slice(0, MAX_EXAMPLE_TEXT), reason });
  }
}

/** Compiles a whole text at once: for the operators' own files and tests. */
export function compileText(text: string, format: BlocklistFormat, limits: CompileLimits = { maxEntries: Number.MAX_SAFE_INTEGER, topLevelNames: true }): CompiledList {
  const compiler = new ListCompiler(format, limits);
  compiler.push(text);
  return openCompiledList(compiler.finish());
}
