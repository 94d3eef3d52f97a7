// The runtime form of loaded rules: per action, exact names and subdomain bases in Maps and
// regexes in a list, so a lookup costs one Map probe per label of the host.
import type RE2 from 're2';
import type { HostPattern } from './host-pattern.js';
import { ruleApplies, type CompiledRule, type RequestFacts } from './rule-match.js';

interface ActionIndex {
  readonly exact: Map<string, CompiledRule[]>;
  /** base → rules matching strict subdomains of base (`*.base`, include_subdomains) */
  readonly subdomains: Map<string, CompiledRule[]>;
  readonly regexes: { readonly regex: RE2; readonly rule: CompiledRule }[];
}

export interface RuleEntry {
  readonly rule: CompiledRule;
  readonly hosts: readonly HostPattern[];
  readonly includeSubdomains: boolean;
}

function emptyIndex(): ActionIndex {
  return { exact: new Map(), subdomains: new Map(), regexes: [] };
}

function addTo(map: Map<string, CompiledRule[]>, key: string, rule: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [rule]);
  else if (!list.includes(rule)) list.push(rule);
}

/** Lists are kept in load order, so the first applicable rule of a list is its best. */
function scan(list: readonly CompiledRule[] | undefined, facts: RequestFacts, best: CompiledRule | undefined): CompiledRule | undefined {
  if (list === undefined) return best;
  for (const rule of list) {
    if (best !== undefined && rule.order >= best.order) return best;
    if (ruleApplies(rule, facts)) return rule;
  }
  return best;
}

export class RuleSet {
  readonly size: number;
  /** the files the rules came from, in load order */
  readonly files: readonly string[];
  readonly rules: readonly CompiledRule[];
  private readonly allow = emptyIndex();
  private readonly deny = emptyIndex();

  constructor(entries: readonly RuleEntry[], files: readonly string[]) {
    this.size = entries.length;
    this.files = Object.freeze([...files]);
    this.rules = Object.freeze(entries.map((entry) => entry.rule));
    for (const { rule, hosts, includeSubdomains } of entries) {
      const index = rule.action === 'allow' ? this.allow : this.deny;
      for (const host of hosts) {
        if (host.kind === 'regex') index.regexes.push({ regex: host.regex, rule });
        else if (host.kind === 'subdomains') addTo(index.subdomains, host.base, rule);
        else {
          addTo(index.exact, host.host, rule);
          if (includeSubdomains && host.isName) addTo(index.subdomains, host.host, rule);
        }
      }
    }
  }

  static empty(): RuleSet {
    return new RuleSet([], []);
  }

  /** The earliest-loaded rule of `action` that matches, or undefined. */
  firstMatch(action: 'allow' | 'deny', facts: RequestFacts): CompiledRule | undefined {
    const index = action === 'allow' ? this.allow : this.deny;
    const { destination } = facts;
    const host = destination.host;
    let best = scan(index.exact.get(host), facts, undefined);
    if (destination.kind === 'name' && index.subdomains.size > 0) {
      for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
        best = scan(index.subdomains.get(host.slice(dot + 1)), facts, best);
      }
    }
    // RE2 works on UTF-8: given a string it converts it again for every pattern unless the same
    // string came just before, so the host is converted once per lookup, not once per pattern.
    let utf8: Buffer | undefined;
    for (const { regex, rule } of index.regexes) {
      if (best !== undefined && rule.order >= best.order) break;
      if (!ruleApplies(rule, facts)) continue;
      utf8 ??= Buffer.from(host, 'utf8');
      if (regex.test(utf8)) best = rule;
    }
    return best;
  }
}
