// Reads a YAML file and validates it against a zod schema, turning every problem into a
// SourceIssue that names file, line, column and the key at fault.
import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { OperatorError } from '../errors.js';

export interface SourceIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export function formatIssue(issue: SourceIssue): string {
  return `${issue.file}:${issue.line}:${issue.column}: ${issue.message}`;
}

/** Thrown when a file does not parse or validate; carries every issue, not just the first. */
export class SourceError extends OperatorError {
  readonly issues: readonly SourceIssue[];

  constructor(issues: readonly SourceIssue[]) {
    super('CONFIG_INVALID', issues.map(formatIssue).join('\n'));
    this.name = 'SourceError';
    this.issues = issues;
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** A parsed YAML document plus what is needed to turn a value path back into a position. */
export class YamlSource {
  constructor(
    readonly file: string,
    readonly document: Document,
    private readonly lines: LineCounter,
  ) {}

  /** Position of the node at `path`, or of its nearest existing ancestor. */
  issueAt(path: readonly PropertyKey[], message: string, keyOf?: string): SourceIssue {
    let offset = 0;
    for (let depth = path.length; depth >= 0; depth--) {
      const node = this.document.getIn(path.slice(0, depth) as unknown[], true) as Node | undefined;
      const range = node?.range;
      if (range !== undefined && range !== null) {
        offset = range[0];
        break;
      }
    }
    if (keyOf !== undefined) {
      const container = this.document.getIn(path as unknown[], true);
      if (isMap(container)) {
        for (const item of container.items) {
          if (isPair(item) && isScalar(item.key) && item.key.value === keyOf && item.key.range) {
            offset = item.key.range[0];
          }
        }
      }
    }
    const position = this.lines.linePos(offset);
    return { file: this.file, line: position.line, column: position.col, message };
  }
}

export function parseYaml(file: string, text: string): { source: YamlSource; issues: SourceIssue[] } {
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const issues: SourceIssue[] = [];
  for (const error of [...document.errors, ...document.warnings]) {
    const position = lines.linePos(error.pos[0]);
    issues.push({ file, line: position.line, column: position.col, message: error.message.split('\n')[0] ?? error.message });
  }
  if (issues.length === 0) {
    // An unquoted `*.example.com` is a YAML alias to an anchor that does not exist; say so
    // where it is instead of failing later in toJS().
    visit(document, {
      Alias(_key, node) {
        if (node.resolve(document) !== undefined) return;
        const position = lines.linePos(node.range?.[0] ?? 0);
        const hint = node.source.startsWith('.') ? `; quote wildcards: "*${node.source}"` : '';
        issues.push({ file, line: position.line, column: position.col, message: `unknown YAML alias *${node.source}${hint}` });
      },
    });
  }
  return { source: new YamlSource(file, document, lines), issues };
}

function describePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

/** Validates a parsed document; unknown keys are reported with the nearest known key. */
export function validate<S extends z.ZodType>(source: YamlSource, schema: S): { value?: z.output<S>; issues: SourceIssue[] } {
  let data: unknown;
  try {
    data = source.document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // e.g. alias expansion past its limit: a document built to exhaust memory
    return { issues: [source.issueAt([], `cannot read document: ${error instanceof Error ? error.message : String(error)}`)] };
  }
  const result = schema.safeParse(data);
  if (result.success) return { value: result.data, issues: [] };
  const issues: SourceIssue[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(schema, issue.path);
      for (const key of issue.keys) {
        const suggestion = closest(key, known);
        const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
        issues.push(source.issueAt(issue.path, `${describePath([...issue.path, key])}: unknown key "${key}"${hint}`, key));
      }
      continue;
    }
    issues.push(source.issueAt(issue.path, `${describePath(issue.path)}: ${issue.message}`));
  }
  return { issues };
}

/** Walks the schema along `path` to list the keys an object there accepts (for suggestions). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema;
  for (const segment of path) {
    current = unwrap(current);
    const def = (current as { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } }).def;
    if (def?.type === 'object' && typeof segment === 'string') current = def.shape?.[segment];
    else if (def?.type === 'array') current = def.element;
    else return [];
  }
  const def = (unwrap(current) as { def?: { type?: string; shape?: Record<string, unknown> } }).def;
  return def?.type === 'object' && def.shape !== undefined ? Object.keys(def.shape) : [];
}

function unwrap(schema: unknown): unknown {
  let current = schema;
  for (let i = 0; i < 10; i++) {
    const def = (current as { def?: { type?: string; innerType?: unknown; in?: unknown } }).def;
    if (def === undefined) return current;
    if (def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') current = def.innerType;
    else if (def.type === 'pipe') current = def.in;
    else return current;
  }
  return current;
}

/** Reads, parses and validates one file; throws SourceError listing every issue. */
export async function loadYamlFile<S extends z.ZodType>(file: string, schema: S): Promise<{ value: z.output<S>; source: YamlSource }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SourceError([{ file, line: 1, column: 1, message: `cannot read file: ${reason}` }]);
  }
  return loadYamlText(file, text, schema);
}

export function loadYamlText<S extends z.ZodType>(file: string, text: string, schema: S): { value: z.output<S>; source: YamlSource } {
  const parsed = parseYaml(file, text);
  if (parsed.issues.length > 0) throw new SourceError(parsed.issues);
  const checked = validate(parsed.source, schema);
  if (checked.value === undefined || checked.issues.length > 0) throw new SourceError(checked.issues);
  return { value: checked.value, source: parsed.source };
}
