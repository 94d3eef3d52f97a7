// Loads rule files (YAML text → checked documents → one RuleSet), reporting every problem in
// every file at its file:line:column before refusing the whole set.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseYaml, SourceError, validate, type SourceIssue, type YamlSource } from '../config/yaml.js';
import { deny, type Decision } from './decision.js';
import type { CompiledRule } from './rule-match.js';
import { DEFAULT_PORTS, ruleFileSchema, type RuleFileSpec } from './rule-schema.js';
import { RuleSet, type RuleEntry } from './rule-set.js';

/** One rule file that parsed and validated; a signed bundle produces these from verified text. */
export interface RuleDocument {
  readonly file: string;
  readonly source: YamlSource;
  readonly spec: RuleFileSpec;
}

interface Checked {
  readonly source?: YamlSource;
  readonly document?: RuleDocument;
  readonly issues: readonly SourceIssue[];
}

/**
 * YAML reads an unquoted `*.example.com` as an alias to a missing anchor, which only fails later
 * when the document is converted; report it here, where it was written, with the likely fix.
 */
function checkRuleText(file: string, text: string): Checked {
  const parsed = parseYaml(file, text);
  if (parsed.issues.length > 0) return { issues: parsed.issues };
  const checked = validate(parsed.source, ruleFileSchema);
  if (checked.value === undefined || checked.issues.length > 0) return { source: parsed.source, issues: checked.issues };
  return { source: parsed.source, document: { file, source: parsed.source, spec: checked.value }, issues: [] };
}

/** Parses and validates one rule file's text; throws SourceError with every issue in it. */
export function parseRuleText(file: string, text: string): RuleDocument {
  const checked = checkRuleText(file, text);
  if (checked.document === undefined) throw new SourceError(checked.issues);
  return checked.document;
}

/** Ids are read from the raw document, so a duplicate is reported even in a file with other errors. */
function duplicateIdIssues(sources: readonly YamlSource[]): SourceIssue[] {
  const seen = new Map<string, SourceIssue>();
  const issues: SourceIssue[] = [];
  for (const source of sources) {
    let raw: unknown;
    try {
      raw = source.document.toJS({ maxAliasCount: 100 });
    } catch {
      continue;
    }
    const rules = (raw as { rules?: unknown } | null)?.rules;
    if (!Array.isArray(rules)) continue;
    rules.forEach((rule: unknown, index) => {
      const id = (rule as { id?: unknown } | null)?.id;
      if (typeof id !== 'string') return;
      const here = source.issueAt(['rules', index, 'id'], '');
      const first = seen.get(id);
      if (first === undefined) {
        seen.set(id, here);
        return;
      }
      const firstPlace = `${first.file}:${first.line}:${first.column}`;
      issues.push({ ...here, message: `rules.${index}.id: duplicate rule id "${id}", first defined at ${firstPlace}` });
    });
  }
  return issues;
}

function toEntries(documents: readonly RuleDocument[]): RuleEntry[] {
  const entries: RuleEntry[] = [];
  for (const { file, spec } of documents) {
    for (const rule of spec.rules) {
      const decision: Decision =
        rule.action === 'allow' ? Object.freeze({ verdict: 'allow', reason: 'rule_allow', ruleId: rule.id }) : Object.freeze(deny('rule_deny', rule.id));
      const compiled: CompiledRule = Object.freeze({
        id: rule.id,
        action: rule.action,
        file,
        order: entries.length,
        ports: new Set(rule.ports ?? DEFAULT_PORTS),
        agents: rule.agents === undefined ? null : new Set(rule.agents),
        groups: rule.groups === undefined ? null : new Set(rule.groups),
        methods: rule.methods === undefined ? null : new Set(rule.methods),
        paths: rule.paths ?? null,
        description: rule.description,
        overrideBlocklist: rule.override_blocklist,
        decision,
      });
      entries.push({ rule: compiled, hosts: rule.hosts, includeSubdomains: rule.include_subdomains });
    }
  }
  return entries;
}

/** Builds one RuleSet from documents already parsed; throws SourceError on duplicate ids. */
export function compileRules(documents: readonly RuleDocument[]): RuleSet {
  const duplicates = duplicateIdIssues(documents.map((document) => document.source));
  if (duplicates.length > 0) throw new SourceError(duplicates);
  return new RuleSet(toEntries(documents), documents.map((document) => document.file));
}

/** A directory stands for its `*.yaml`/`*.yml` files in name order; hidden files are skipped. */
async function expand(path: string): Promise<{ files: string[]; issues: SourceIssue[] }> {
  try {
    const info = await stat(path);
    if (!info.isDirectory()) return { files: [path], issues: [] };
    const names = (await readdir(path)).filter((name) => /\.ya?ml$/.test(name) && !name.startsWith('.')).sort();
    const files: string[] = [];
    for (const name of names) {
      if ((await stat(join(path, name))).isFile()) files.push(join(path, name));
    }
    return { files, issues: [] };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { files: [], issues: [{ file: path, line: 1, column: 1, message: `cannot read rules: ${reason}` }] };
  }
}

/** Rule files and directories of them → one RuleSet; throws SourceError listing every issue. */
export async function loadRuleFiles(paths: readonly string[]): Promise<RuleSet> {
  const issues: SourceIssue[] = [];
  const sources: YamlSource[] = [];
  const documents: RuleDocument[] = [];
  const files: string[] = [];
  for (const path of paths) {
    const expanded = await expand(path);
    issues.push(...expanded.issues);
    for (const file of expanded.files) if (!files.includes(file)) files.push(file);
  }
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      issues.push({ file, line: 1, column: 1, message: `cannot read file: ${reason}` });
      continue;
    }
    const checked = checkRuleText(file, text);
    issues.push(...checked.issues);
    if (checked.source !== undefined) sources.push(checked.source);
    if (checked.document !== undefined) documents.push(checked.document);
  }
  issues.push(...duplicateIdIssues(sources));
  if (issues.length > 0) {
    const rank = (issue: SourceIssue): number => files.indexOf(issue.file);
    issues.sort((a, b) => rank(a) - rank(b) || a.line - b.line || a.column - b.column);
    throw new SourceError(issues);
  }
  return new RuleSet(toEntries(documents), documents.map((document) => document.file));
}
