// GET /v1/explain: runs decide() on the policy in force now for a hypothetical request and says
// which rule, mode, blocklist entry, approval or forbidden address would decide it, and why.
import type { Agent } from '../../agent.js';
import { destinationOf, type Destination } from '../../destination.js';
import { isSluiceError } from '../../errors.js';
import { decide, decideAddresses, type DecideArgs, type Policy } from '../../policy/decide.js';
import type { Decision } from '../../policy/decision.js';
import { optionalPort, requiredQuery } from '../fields.js';
import { apiError, type Route } from '../router.js';
import { approvalView } from './approvals.js';

export interface ExplainDeps {
  readonly policy: () => Policy;
  readonly now: () => number;
  /** the agent as identification would make it (its groups and mode in force), or undefined */
  readonly agentNamed: (name: string) => Agent | undefined;
  /** the destination's forbidden class when it is an IP literal or a metadata name (the connect stage's guard), else null */
  readonly forbiddenClass: (destination: Destination) => string | null;
}

function why(decision: Decision, agent: Agent, destination: Destination): string {
  const target = `${destination.host}:${destination.port}`;
  switch (decision.reason) {
    case 'rule_allow':
      return `allow rule ${decision.ruleId} matches ${agent.name} -> ${target}`;
    case 'rule_deny':
      return `deny rule ${decision.ruleId ?? '?'} matches ${target}; deny beats allow and approvals`;
    case 'blocklist_override':
      return `${target} is on the blocklist ${decision.listedBy?.source ?? '?'} (entry ${decision.listedBy?.entry ?? '?'}), passed by ${decision.ruleId}`;
    case 'blocklisted':
      return `${target} is on the blocklist ${decision.listedBy?.source ?? '?'} (entry ${decision.listedBy?.entry ?? '?'})`;
    case 'approval_allow':
      return `no rule allows ${target}, but approval ${decision.approval ?? '?'} does`;
    case 'no_matching_rule':
      return `no rule or approval allows ${target} and ${agent.name} is in Strict mode`;
    case 'learn_unmatched':
      return `no rule matches ${target}; ${agent.name} is in Learn mode, so it is let through and recorded`;
    case 'anonymous_denied':
      return 'the client would be anonymous and anonymous.allow is false';
    case 'destination_forbidden':
      return `${destination.host} is a forbidden address`;
    case 'no_valid_bundle':
      return 'no valid allowlist bundle is in force; everything is denied';
    case 'hold_timeout':
    case 'hold_full':
      return `${agent.name} holds unknown destinations (on_unknown: hold); no rule or approval allows ${target}, so it would wait for one`;
  }
}

export function explainRoutes(deps: ExplainDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/explain',
      role: 'viewer',
      handle: async (request) => {
        const name = requiredQuery(request.query, 'agent');
        const agent = deps.agentNamed(name);
        if (agent === undefined) throw apiError('ADMIN_BAD_REQUEST', `agent: no agent named "${name}" in the config`);
        let destination: Destination;
        try {
          destination = destinationOf(requiredQuery(request.query, 'host').replace(/^\[(.*)\]$/, '$1'), optionalPort(request.query.get('port'), 'port') ?? 443);
        } catch (error) {
          if (isSluiceError(error) && !error.code.startsWith('ADMIN_')) throw apiError('ADMIN_BAD_REQUEST', `host: ${error.message}`);
          throw error;
        }
        const method = request.query.get('method');
        const path = request.query.get('path');
        if ((method === null) !== (path === null)) throw apiError('ADMIN_BAD_REQUEST', 'method and path go together (a CONNECT tunnel shows neither)');
        const policy = deps.policy();
        const args: DecideArgs = method === null || path === null ? { agent, destination, now: deps.now() } : { agent, destination, method: method.toUpperCase(), path, now: deps.now() };
        let decision = decide(policy, args);
        let forbidden: string | null = null;
        if (decision.verdict !== 'deny') {
          forbidden = deps.forbiddenClass(destination);
          if (forbidden !== null) decision = { verdict: 'deny', reason: 'destination_forbidden', ruleId: null };
          else if (destination.kind !== 'name') decision = decideAddresses(policy, args, decision, [destination.host]);
        }
        const rule = decision.ruleId === null ? undefined : policy.rules.rules.find((candidate) => candidate.id === decision.ruleId);
        const approval = decision.approval === undefined ? undefined : policy.approvals?.all.find((candidate) => candidate.id === decision.approval);
        return {
          status: 200,
          body: {
            verdict: decision.verdict,
            reason: decision.reason,
            rule: decision.ruleId,
            rule_file: rule?.file ?? null,
            agent: { name: agent.name, mode: agent.mode, groups: agent.groups },
            destination: { host: destination.host, port: destination.port },
            method: args.method ?? null,
            path: args.path ?? null,
            blocklist: decision.listedBy === undefined ? null : { source: decision.listedBy.source, entry: decision.listedBy.entry },
            approval: approval === undefined ? null : approvalView(approval),
            forbidden_class: forbidden,
            bundle_version: policy.bundleVersion ?? null,
            why: forbidden === null ? why(decision, agent, destination) : `${destination.host} is in the forbidden class ${forbidden}`,
            // A name is vetted when Sluice resolves it: the answer may still be a forbidden address.
            addresses_checked: destination.kind !== 'name',
          },
        };
      },
    },
  ];
}
