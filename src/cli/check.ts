// `sluice check FILE_OR_DIR...`: validates config and rule files with the same loaders `run`
// uses, printing every problem as file:line:column so CI can gate changes to rules/.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isMap, isSeq } from 'yaml';
import { ANONYMOUS_AGENT_NAME, type Agent } from '../agent.js';
import { loadConfig } from '../config/load.js';
import { configSchema, type ConfigFile } from '../config/schema.js';
import { destinationOf } from '../destination.js';
import { InferenceHosts, KNOWN_INFERENCE_HOSTS } from '../meter/index.js';
import { formatIssue, parseYaml, SourceError, type SourceIssue } from '../config/yaml.js';
import { loadBlocklistConfig } from '../policy/blocklist/sources.js';
import { looksLikeBundle, parseBundleText } from '../policy/bundle/document.js';
import { loadRuleFiles } from '../policy/rules.js';
import type { RuleSet } from '../policy/rule-set.js';
import type { CliIo, Command } from './command.js';
import { EXIT, usageFailure } from './exit.js';
import { placementFrom } from './placement.js';

const USAGE = `Usage: sluice check FILE_OR_DIR...

Validates Sluice configuration files and rule files without starting anything.
A YAML document whose top-level "rules:" is a list of rule objects is a rule file, or an allowlist
bundle when it also has the bundle header (name, version); any other is a configuration file, and
the rule files and blocklist sources it names are checked along with it. A directory
stands for its *.yaml and *.yml files. Every problem is printed as file:line:column: message.

Exit status: 0 when everything is valid, 1 on any error, 2 on bad usage.`;

type Kind = 'config' | 'rules' | 'bundle';

interface Outcome {
  readonly issues: SourceIssue[];
  readonly files: Set<string>;
  /** file → rule ids, so a rule file reached twice is counted once */
  readonly rules: Map<string, Set<string>>;
  /** not errors: allowed model API hosts whose calls would escape metering */
  readonly warnings: Set<string>;
}

/** Tells the two file shapes apart: a config's `rules:` is a list of paths, a rule file's a list of maps. */
function classify(file: string, text: string): { kind?: Kind; issues: SourceIssue[] } {
  const { source, issues } = parseYaml(file, text);
  if (issues.length > 0) return { issues };
  const root = source.document.contents;
  const rules = isMap(root) ? root.get('rules', true) : undefined;
  if (!isMap(root) || !isSeq(rules)) return { kind: 'config', issues: [] };
  // A signed allowlist bundle is a rule file with a header (name, version, issued_at).
  if (looksLikeBundle(text)) return { kind: 'bundle', issues: [] };
  if (rules.items.length === 0) return { kind: root.items.length === 1 ? 'rules' : 'config', issues: [] };
  return { kind: rules.items.every((item) => isMap(item)) ? 'rules' : 'config', issues: [] };
}

async function expand(path: string, outcome: Outcome): Promise<string[]> {
  try {
    if (!(await stat(path)).isDirectory()) return [path];
    const names = (await readdir(path)).filter((name) => /\.ya?ml$/.test(name) && !name.startsWith('.')).sort();
    if (names.length === 0) outcome.issues.push({ file: path, line: 1, column: 1, message: 'no *.yaml or *.yml files in this directory' });
    return names.map((name) => join(path, name));
  } catch (error) {
    outcome.issues.push({ file: path, line: 1, column: 1, message: `cannot read: ${error instanceof Error ? error.message : String(error)}` });
    return [];
  }
}

function record(outcome: Outcome, rules: RuleSet): void {
  for (const file of rules.files) outcome.files.add(resolve(file));
  for (const rule of rules.rules) {
    const ids = outcome.rules.get(resolve(rule.file)) ?? new Set<string>();
    ids.add(rule.id);
    outcome.rules.set(resolve(rule.file), ids);
  }
}

async function attempt(outcome: Outcome, file: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof SourceError) outcome.issues.push(...error.issues);
    else outcome.issues.push({ file, line: 1, column: 1, message: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * A rule that allows a known model API which `inference.hosts` does not list lets that agent's
 * calls escape token budgets: worth a warning, not an error (it may be deliberate).
 */
function warnUnmetered(outcome: Outcome, rules: RuleSet, config: ConfigFile): void {
  const metered = new InferenceHosts(config.inference.intercept ? config.inference.hosts : []);
  const agents: Agent[] = [
    { name: ANONYMOUS_AGENT_NAME, groups: [], mode: config.mode, via: 'anonymous' },
    ...config.agents.map((agent): Agent => ({ name: agent.name, groups: agent.groups, mode: agent.mode ?? config.mode, via: 'token' })),
  ];
  for (const host of KNOWN_INFERENCE_HOSTS) {
    if (metered.has(host)) continue;
    const destination = destinationOf(host, 443);
    for (const agent of agents) {
      const rule = rules.firstMatch('allow', { agent, destination });
      if (rule === undefined || rules.firstMatch('deny', { agent, destination }) !== undefined) continue;
      outcome.warnings.add(`${rule.file}: warning: rule ${rule.id} allows ${host}, a model API that inference.hosts does not meter: its calls escape token budgets`);
      break;
    }
  }
}

async function check(paths: readonly string[], io: CliIo): Promise<Outcome> {
  const outcome: Outcome = { issues: [], files: new Set(), rules: new Map(), warnings: new Set() };
  const ruleFiles: string[] = [];
  const configFiles: string[] = [];
  for (const path of paths) {
    for (const file of await expand(path, outcome)) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        outcome.issues.push({ file, line: 1, column: 1, message: `cannot read file: ${error instanceof Error ? error.message : String(error)}` });
        continue;
      }
      const { kind, issues } = classify(file, text);
      outcome.issues.push(...issues);
      if (kind === 'rules') ruleFiles.push(file);
      else if (kind === 'config') configFiles.push(file);
      else if (kind === 'bundle') {
        await attempt(outcome, file, async () => {
          outcome.files.add(resolve(file));
          record(outcome, parseBundleText(file, text).ruleSet);
        });
      }
    }
  }
  for (const file of configFiles) {
    await attempt(outcome, file, async () => {
      const loaded = await loadConfig(file, placementFrom(io));
      outcome.files.add(resolve(file));
      const rules = await loadRuleFiles(loaded.rulePaths);
      record(outcome, rules);
      warnUnmetered(outcome, rules, loaded.config);
      await loadBlocklistConfig(loaded.blocklistSources);
      outcome.files.add(loaded.blocklistSources);
    });
  }
  if (ruleFiles.length > 0) {
    await attempt(outcome, ruleFiles[0] ?? '', async () => {
      const rules = await loadRuleFiles(ruleFiles);
      record(outcome, rules);
      warnUnmetered(outcome, rules, configSchema.parse({}));
    });
  }
  return outcome;
}

export const checkCommand: Command = {
  usage: USAGE,
  async run(argv, io) {
    const option = argv.find((arg) => arg.startsWith('-'));
    if (argv.length === 0 || option !== undefined) {
      return usageFailure(io, 'sluice check', option === undefined ? 'name at least one file or directory' : `unknown option "${option}"`, USAGE);
    }
    const outcome = await check(argv, io);
    // A rule file reached both directly and through a config reports its problems once.
    const lines = [...new Set(outcome.issues.map(formatIssue))];
    if (lines.length > 0) {
      for (const line of lines) io.err(line);
      io.err(`sluice check: ${lines.length} error${lines.length === 1 ? '' : 's'}`);
      return EXIT.failed;
    }
    for (const warning of outcome.warnings) io.err(warning);
    let rules = 0;
    for (const ids of outcome.rules.values()) rules += ids.size;
    const files = outcome.files.size;
    io.out(`ok: ${files} file${files === 1 ? '' : 's'}, ${rules} rule${rules === 1 ? '' : 's'}`);
    return EXIT.ok;
  },
};
