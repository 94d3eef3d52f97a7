// decide() by table: Strict vs Learn, deny over allow, wildcard vs apex, include_subdomains, re2,
// default ports, agents/groups, anonymous refusal, and method/path rules over CONNECT vs plain HTTP.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Agent } from '../src/agent.js';
import { parseAbsoluteTarget, parseConnectTarget } from '../src/ingress/request-target.js';
import { decide, type DecideArgs, type Policy } from '../src/policy/decide.js';
import type { Decision } from '../src/policy/decision.js';
import { compileRules, parseRuleText } from '../src/policy/rules.js';

const RULES = `
rules:
  - id: openai
    action: allow
    hosts: [api.openai.com]
  - id: gh-content
    action: allow
    hosts: ["*.githubusercontent.example"]
  - id: example-tree
    action: allow
    hosts: [example.org]
    include_subdomains: true
  - id: numbered-api
    action: allow
    hosts: ["re2:^api[0-9]+\\\\.example\\\\.net$"]
  - id: odd-port
    action: allow
    hosts: [registry.example.com]
    ports: [8443]
  - id: builders-only
    action: allow
    hosts: [build.example.com]
    agents: [builder]
    groups: [ci]
  - id: read-only-api
    action: allow
    hosts: [data.example.com]
    methods: [GET]
    paths: ["/v1/", "re2:^/public/[a-z]+$"]
  - id: no-uploads
    action: deny
    hosts: [files.example.com]
    methods: [POST, PUT]
  - id: files
    action: allow
    hosts: [files.example.com]
  - id: no-admin
    action: deny
    hosts: [files.example.com]
    paths: [/admin]
  - id: evil-tree
    action: deny
    hosts: [evil.example.org]
    include_subdomains: true
  - id: ip-literal
    action: allow
    hosts: ["192.0.2.7", "2001:db8::1"]
`;

const rules = compileRules([parseRuleText('inline.yaml', RULES)]);

function agent(mode: Agent['mode'], extra: Partial<Agent> = {}): Agent {
  return { name: 'alice', groups: [], via: 'token', mode, ...extra };
}

const strict = agent('strict');
const learn = agent('learn');

/** Approvals are judged against the decision's time; rule tables need only a fixed one. */
const NOW = Date.UTC(2026, 0, 1);

function connect(authority: string): Omit<DecideArgs, 'agent'> {
  return { destination: parseConnectTarget(authority), now: NOW };
}

function http(method: string, url: string): Omit<DecideArgs, 'agent'> {
  const target = parseAbsoluteTarget(url);
  return { destination: target.destination, method, path: target.path, now: NOW };
}

const allow = (ruleId: string): Decision => ({ verdict: 'allow', reason: 'rule_allow', ruleId });
const ruleDeny = (ruleId: string): Decision => ({ verdict: 'deny', reason: 'rule_deny', ruleId });
const noRule: Decision = { verdict: 'deny', reason: 'no_matching_rule', ruleId: null };
const learned: Decision = { verdict: 'learn', reason: 'learn_unmatched', ruleId: null };

interface Case {
  readonly name: string;
  readonly agent: Agent;
  readonly request: Omit<DecideArgs, 'agent'>;
  readonly expected: Decision;
  readonly anonymousAllowed?: boolean;
}

const cases: Case[] = [
  { name: 'allows an exact host on 443', agent: strict, request: connect('api.openai.com:443'), expected: allow('openai') },
  { name: 'allows an exact host on 80 by default', agent: strict, request: http('GET', 'http://api.openai.com/x'), expected: allow('openai') },
  { name: 'refuses other ports than the default 443/80', agent: strict, request: connect('api.openai.com:8443'), expected: noRule },
  { name: 'honours explicit ports', agent: strict, request: connect('registry.example.com:8443'), expected: allow('odd-port') },
  { name: 'explicit ports replace the defaults', agent: strict, request: connect('registry.example.com:443'), expected: noRule },
  { name: 'strict mode denies an unmatched host', agent: strict, request: connect('unknown.example:443'), expected: noRule },
  { name: 'learn mode records an unmatched host', agent: learn, request: connect('unknown.example:443'), expected: learned },
  { name: 'exact names do not cover subdomains', agent: strict, request: connect('x.api.openai.com:443'), expected: noRule },
  { name: 'a wildcard matches a subdomain', agent: strict, request: connect('raw.githubusercontent.example:443'), expected: allow('gh-content') },
  { name: 'a wildcard matches deeper subdomains', agent: strict, request: connect('a.b.githubusercontent.example:443'), expected: allow('gh-content') },
  { name: 'a wildcard excludes the apex', agent: strict, request: connect('githubusercontent.example:443'), expected: noRule },
  { name: 'include_subdomains includes the apex', agent: strict, request: connect('example.org:443'), expected: allow('example-tree') },
  { name: 'include_subdomains includes subdomains', agent: strict, request: connect('www.example.org:443'), expected: allow('example-tree') },
  { name: 'a suffix that is not a label boundary does not match', agent: strict, request: connect('badexample.org:443'), expected: noRule },
  { name: 'deny beats allow from an earlier rule', agent: strict, request: connect('x.evil.example.org:443'), expected: ruleDeny('evil-tree') },
  { name: 'deny applies in learn mode too', agent: learn, request: connect('evil.example.org:443'), expected: ruleDeny('evil-tree') },
  { name: 'trailing dot and case are normalised before matching', agent: strict, request: connect('API.OpenAI.com.:443'), expected: allow('openai') },
  { name: 're2 patterns match', agent: strict, request: connect('api42.example.net:443'), expected: allow('numbered-api') },
  { name: 're2 patterns are anchored by their author', agent: strict, request: connect('api42.example.net.attacker.test:443'), expected: noRule },
  { name: 're2 patterns do not match other names', agent: strict, request: connect('apix.example.net:443'), expected: noRule },
  { name: 'agents list admits the named agent', agent: agent('strict', { name: 'builder' }), request: connect('build.example.com:443'), expected: allow('builders-only') },
  { name: 'groups list admits a group member', agent: agent('strict', { groups: ['ci'] }), request: connect('build.example.com:443'), expected: allow('builders-only') },
  { name: 'agents/groups exclude everyone else', agent: strict, request: connect('build.example.com:443'), expected: noRule },
  { name: 'anonymous agents are refused when not allowed', agent: agent('learn', { via: 'anonymous', name: 'anonymous' }), request: connect('api.openai.com:443'), expected: { verdict: 'deny', reason: 'anonymous_denied', ruleId: null }, anonymousAllowed: false },
  { name: 'anonymous agents follow the rules when allowed', agent: agent('strict', { via: 'anonymous', name: 'anonymous' }), request: connect('api.openai.com:443'), expected: allow('openai') },
  { name: 'an allow rule with methods/paths never matches CONNECT', agent: strict, request: connect('data.example.com:443'), expected: noRule },
  { name: 'an allow rule with methods/paths matches plain HTTP', agent: strict, request: http('GET', 'http://data.example.com/v1/items?x=1'), expected: allow('read-only-api') },
  { name: 'an allow rule refuses another method', agent: strict, request: http('POST', 'http://data.example.com/v1/items'), expected: noRule },
  { name: 'an allow rule compares methods case-sensitively', agent: strict, request: http('get', 'http://data.example.com/v1/items'), expected: noRule },
  { name: 'an allow rule refuses another path', agent: strict, request: http('GET', 'http://data.example.com/v2/items'), expected: noRule },
  { name: 'an allow rule path regex matches', agent: strict, request: http('GET', 'http://data.example.com/public/docs'), expected: allow('read-only-api') },
  { name: 'an allow rule refuses dot segments escaping its prefix', agent: strict, request: http('GET', 'http://data.example.com/v1/../admin'), expected: noRule },
  { name: 'an allow rule refuses encoded dots', agent: strict, request: http('GET', 'http://data.example.com/v1/%2e%2e/admin'), expected: noRule },
  { name: 'a deny rule with methods matches CONNECT (fail closed)', agent: strict, request: connect('files.example.com:443'), expected: ruleDeny('no-uploads') },
  { name: 'a deny rule with methods matches its method over HTTP', agent: strict, request: http('PUT', 'http://files.example.com/a'), expected: ruleDeny('no-uploads') },
  { name: 'a deny rule compares methods case-insensitively', agent: strict, request: http('post', 'http://files.example.com/a'), expected: ruleDeny('no-uploads') },
  { name: 'a deny rule with methods lets other methods reach the allow', agent: strict, request: http('GET', 'http://files.example.com/a'), expected: allow('files') },
  { name: 'a deny rule with paths matches its prefix', agent: strict, request: http('GET', 'http://files.example.com/admin/users'), expected: ruleDeny('no-admin') },
  { name: 'a deny rule with paths ignores case', agent: strict, request: http('GET', 'http://files.example.com/ADMIN'), expected: ruleDeny('no-admin') },
  { name: 'a deny rule with paths matches ambiguous spellings', agent: strict, request: http('GET', 'http://files.example.com//admin'), expected: ruleDeny('no-admin') },
  { name: 'a deny rule with paths matches encoded letters', agent: strict, request: http('GET', 'http://files.example.com/%61dmin'), expected: ruleDeny('no-admin') },
  { name: 'query strings do not make a path ambiguous', agent: strict, request: http('GET', 'http://files.example.com/ok?next=//x'), expected: allow('files') },
  { name: 'IPv4 literals match exactly', agent: strict, request: connect('192.0.2.7:443'), expected: allow('ip-literal') },
  { name: 'IPv4 in another notation is the same address', agent: strict, request: connect('0xc0.0.2.7:443'), expected: allow('ip-literal') },
  { name: 'IPv6 literals match exactly', agent: strict, request: connect('[2001:db8:0::1]:443'), expected: allow('ip-literal') },
];

describe('decide()', () => {
  for (const entry of cases) {
    test(entry.name, () => {
      const policy: Policy = { rules, anonymousAllowed: entry.anonymousAllowed ?? true };
      assert.deepEqual(decide(policy, { agent: entry.agent, ...entry.request }), entry.expected);
    });
  }

  test('returns the earliest allow rule when several match', () => {
    const twice = compileRules([
      parseRuleText('a.yaml', 'rules:\n  - {id: first, action: allow, hosts: ["*.example.com"]}\n  - {id: second, action: allow, hosts: [www.example.com]}\n'),
    ]);
    assert.deepEqual(decide({ rules: twice, anonymousAllowed: true }, { agent: strict, ...connect('www.example.com:443') }), allow('first'));
  });

  // Its own rules, so the table tests above keep one rule set.
  test('matches re2 host patterns regardless of case, without changing what their escapes mean', () => {
    const cased = compileRules([
      parseRuleText(
        'cased.yaml',
        'rules:\n  - {id: shouting-deny, action: deny, hosts: ["re2:^Tracker\\\\.Example\\\\.NET$"]}\n  - {id: letters-only, action: allow, hosts: ["re2:^\\\\D+\\\\.Letters\\\\.Example$"]}\n',
      ),
    ]);
    const policy: Policy = { rules: cased, anonymousAllowed: true };
    // A deny written in capitals must still deny: hosts reach decide() lower-cased.
    assert.deepEqual(decide(policy, { agent: learn, ...connect('TRACKER.example.net:443') }), ruleDeny('shouting-deny'));
    // Lower-casing the pattern text instead would have turned \D (not a digit) into \d.
    assert.deepEqual(decide(policy, { agent: strict, ...connect('abc.letters.example:443') }), allow('letters-only'));
    assert.deepEqual(decide(policy, { agent: strict, ...connect('123.letters.example:443') }), noRule);
  });
});
