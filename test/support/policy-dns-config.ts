// The config and rules the policy DNS tests start startPolicyDns with: one agent (the user running
// the tests, identified by uid), strict mode, and one allowed name, docs.example.test.
import { configSchema, type ConfigFile } from '../../src/config/schema.js';
import { loadYamlText } from '../../src/config/yaml.js';
import { AddressGuard } from '../../src/connect/index.js';
import { RedirectedIdentity } from '../../src/identity/redirected.js';
import { dnsRateLimiters, type PolicyDnsSetup } from '../../src/ingress/dns/index.js';
import type { Policy } from '../../src/policy/decide.js';
import { compileRules, parseRuleText } from '../../src/policy/rules.js';

/** `dnsExtra` continues the `dns:` flow mapping, e.g. `, burst: 3`. */
export function policyDnsConfig(upstream: string, dnsExtra = ''): ConfigFile {
  return loadYamlText(
    'sluice.yaml',
    `mode: strict
listen: { dns: '127.0.0.1:0' }
anonymous: { allow: false }
agents: [{ name: tester, uids: [${process.getuid?.() ?? 0}] }]
dns: { upstreams: ['${upstream}']${dnsExtra} }
`,
    configSchema,
  ).value;
}

export const DOCS_POLICY: Policy = {
  rules: compileRules([parseRuleText('rules.yaml', 'rules:\n  - { id: docs, action: allow, hosts: [docs.example.test] }\n')]),
  anonymousAllowed: false,
};

/** What app.ts hands startPolicyDns for `config`, with DOCS_POLICY as the policy in force. */
export function policyDnsSetup(config: ConfigFile): Pick<PolicyDnsSetup, 'config' | 'policy' | 'now' | 'addressGuard' | 'identity' | 'limiter' | 'peerLimiter'> {
  return { config, policy: () => DOCS_POLICY, now: () => Date.now(), addressGuard: new AddressGuard(), identity: new RedirectedIdentity(config), ...dnsRateLimiters(config.dns) };
}
