// Turns Learn records into a rule file an operator can review and adopt: one allow rule per
// host, grouped by registrable domain, limited to the ports and agents actually seen.
import { getDomain } from 'tldts';
import { parseHostPattern } from './host-pattern.js';
import type { LearnEntry } from './learn-store.js';
import { isOperatorError } from '../errors.js';

interface HostSummary {
  readonly host: string;
  readonly group: string;
  readonly ports: Set<number>;
  readonly agents: Set<string>;
  count: number;
  firstSeen: number;
  lastSeen: number;
}

const MAX_ID_LENGTH = 128;
const ADDRESS_GROUP = 'IP addresses';

function summarise(entries: readonly LearnEntry[]): { hosts: HostSummary[]; skipped: string[] } {
  const byHost = new Map<string, HostSummary>();
  const skipped: string[] = [];
  for (const entry of entries) {
    let summary = byHost.get(entry.host);
    if (summary === undefined) {
      let pattern;
      try {
        pattern = parseHostPattern(entry.host);
      } catch (error) {
        if (!isOperatorError(error, 'RULE_PATTERN_INVALID')) throw error;
        pattern = undefined;
      }
      // A hand-edited store may hold something that is not a plain host; leave it out, say so.
      if (pattern?.kind !== 'exact' || pattern.host !== entry.host) {
        if (!skipped.includes(entry.host)) skipped.push(entry.host);
        continue;
      }
      const group = pattern.isName ? (getDomain(entry.host, { allowPrivateDomains: true }) ?? entry.host) : ADDRESS_GROUP;
      summary = { host: entry.host, group, ports: new Set(), agents: new Set(), count: 0, firstSeen: Infinity, lastSeen: -Infinity };
      byHost.set(entry.host, summary);
    }
    summary.ports.add(entry.port);
    summary.agents.add(entry.agent);
    summary.count += entry.count;
    summary.firstSeen = Math.min(summary.firstSeen, entry.firstSeen.getTime());
    summary.lastSeen = Math.max(summary.lastSeen, entry.lastSeen.getTime());
  }
  // Names grouped by registrable domain first, addresses last; code-unit order, not the locale's.
  const rank = (summary: HostSummary): string => `${summary.group === ADDRESS_GROUP ? 1 : 0}\u0000${summary.group}\u0000${summary.host}`;
  const hosts = [...byHost.values()].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
  return { hosts, skipped };
}

function ruleId(host: string, taken: Set<string>): string {
  const base = `learned.${host.replace(/[^a-z0-9.-]/g, '-')}`.slice(0, MAX_ID_LENGTH - 4);
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

/** JSON strings are valid YAML double-quoted scalars, so any value is written safely. */
const quote = (value: string): string => JSON.stringify(value);

/** Why a host must not be proposed (a blocklist entry naming it), or null when nothing forbids it. */
export type BlockedCheck = (host: string) => string | null;

export interface Proposal {
  readonly text: string;
  /** Hosts left out because a blocklist lists them, each with the entry that does. */
  readonly blocked: readonly { readonly host: string; readonly why: string }[];
}

export function proposeRules(entries: readonly LearnEntry[], blockedBy: BlockedCheck = () => null): Proposal {
  const summary = summarise(entries);
  const blocked: { host: string; why: string }[] = [];
  // A learned host that a blocklist names would be refused anyway; proposing it invites an exception.
  const hosts = summary.hosts.filter((host) => {
    const why = blockedBy(host.host);
    if (why !== null) blocked.push({ host: host.host, why });
    return why === null;
  });
  const lines = [
    `# Proposed by \`sluice learn propose\` from ${hosts.length} destination(s) seen in Learn mode.`,
    '# Review before adopting: these record what agents did, not what they should be allowed to do.',
  ];
  for (const host of summary.skipped) lines.push(`# skipped ${quote(host)}: not a plain host name or address`);
  for (const { host, why } of blocked) lines.push(`# left out ${quote(host)}: ${why}`);
  if (hosts.length === 0) return { text: `${[...lines, 'rules: []'].join('\n')}\n`, blocked };
  lines.push('rules:');
  const taken = new Set<string>();
  let group: string | undefined;
  for (const host of hosts) {
    if (host.group !== group) {
      group = host.group;
      lines.push(`  # ${group}`);
    }
    const seen = `seen ${host.count} time(s), ${new Date(host.firstSeen).toISOString()} to ${new Date(host.lastSeen).toISOString()}`;
    lines.push(
      `  - id: ${ruleId(host.host, taken)}`,
      '    action: allow',
      `    hosts: [${quote(host.host)}]`,
      `    ports: [${[...host.ports].sort((a, b) => a - b).join(', ')}]`,
      `    agents: [${[...host.agents].sort().map(quote).join(', ')}]`,
      `    description: ${quote(seen)}`,
    );
  }
  return { text: `${lines.join('\n')}\n`, blocked };
}
