// Asks the proxy's policy whether an agent may resolve a name: it may when it could connect to
// that name on 443 or 80, the ports the transparent listeners and most agents use.
import type { Agent } from '../../agent.js';
import { decide, type Policy } from '../../policy/decide.js';
import { destinationOf } from '../../destination.js';
import type { DnsVerdict } from './handle-query.js';

const PORTS = [443, 80] as const;

export function dnsVerdict(policy: Policy, agent: Agent, name: string, now: number): DnsVerdict {
  let learn = false;
  for (const port of PORTS) {
    let destination;
    try {
      destination = destinationOf(name, port);
    } catch {
      return 'refuse';
    }
    const decision = decide(policy, { agent, destination, now });
    if (decision.verdict === 'allow') return 'answer';
    if (decision.verdict === 'learn') learn = true;
  }
  return learn ? 'learn' : 'refuse';
}
