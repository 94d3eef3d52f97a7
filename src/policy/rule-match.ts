// Whether one compiled rule's non-host conditions (port, agent, method, path) hold for a
// request. Allow rules fail closed on anything they cannot see; deny rules match on it.
import type { Agent } from '../agent.js';
import type { Destination } from '../destination.js';
import type { Decision } from './decision.js';
import type { PathPattern } from './host-pattern.js';

export interface CompiledRule {
  readonly id: string;
  readonly action: 'allow' | 'deny';
  readonly file: string;
  /** position in load order; the lowest matching one decides among rules of one action */
  readonly order: number;
  readonly ports: ReadonlySet<number>;
  readonly agents: ReadonlySet<string> | null;
  readonly groups: ReadonlySet<string> | null;
  readonly methods: ReadonlySet<string> | null;
  readonly paths: readonly PathPattern[] | null;
  readonly description: string | undefined;
  /** an allow rule that may pass a blocklisted host; every such pass is audited */
  readonly overrideBlocklist: boolean;
  /** built once so decide() allocates nothing per call */
  readonly decision: Decision;
}

export interface RequestFacts {
  readonly agent: Agent;
  readonly destination: Destination;
  /** only for plain HTTP; a CONNECT tunnel hides both */
  readonly method?: string | undefined;
  readonly path?: string | undefined;
}

// Spellings an origin may resolve differently from the raw text (RFC 3986 §5.2.4 dot segments,
// encoded unreserved characters or slashes, backslashes, merged slashes): a prefix test on
// them proves nothing about the path the origin serves.
const AMBIGUOUS_PATH = /\\|\/\/|\/\.\.?(?:\/|$)|%(?:3[0-9]|[46][1-9a-f]|[57][0-9a]|2[def]|5[cf]|7e)/i;

function isAmbiguous(path: string): boolean {
  const query = path.indexOf('?');
  return AMBIGUOUS_PATH.test(query < 0 ? path : path.slice(0, query));
}

function startsWithIgnoringCase(text: string, lowerPrefix: string): boolean {
  if (text.length < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let code = text.charCodeAt(i);
    if (code >= 65 && code <= 90) code += 32;
    if (code !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

function agentApplies(rule: CompiledRule, agent: Agent): boolean {
  if (rule.agents === null && rule.groups === null) return true;
  if (rule.agents?.has(agent.name) === true) return true;
  if (rule.groups === null) return false;
  for (const group of agent.groups) if (rule.groups.has(group)) return true;
  return false;
}

function methodApplies(rule: CompiledRule, method: string | undefined): boolean {
  if (rule.methods === null) return true;
  if (method === undefined) return rule.action === 'deny';
  // Methods are case-sensitive (RFC 9110 §9.1), but a lenient origin may not be: deny on any case.
  return rule.methods.has(rule.action === 'deny' ? method.toUpperCase() : method);
}

function pathApplies(rule: CompiledRule, path: string | undefined): boolean {
  if (rule.paths === null) return true;
  if (path === undefined) return rule.action === 'deny';
  if (isAmbiguous(path)) return rule.action === 'deny';
  for (const pattern of rule.paths) {
    if (pattern.kind === 'regex') {
      if (pattern.regex.test(path)) return true;
    } else if (rule.action === 'deny' ? startsWithIgnoringCase(path, pattern.lowerPrefix) : path.startsWith(pattern.prefix)) {
      return true;
    }
  }
  return false;
}

export function ruleApplies(rule: CompiledRule, facts: RequestFacts): boolean {
  return (
    rule.ports.has(facts.destination.port) &&
    agentApplies(rule, facts.agent) &&
    methodApplies(rule, facts.method) &&
    pathApplies(rule, facts.path)
  );
}
