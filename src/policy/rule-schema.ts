// The shape of a rule file (`rules:` list) as a zod schema whose output already holds compiled
// host and path patterns, so every bad pattern is reported at its own line and column.
import { z } from 'zod';
import { checkSubdomainBase, parseHostPattern, parsePathPattern, type HostPattern, type PathPattern } from './host-pattern.js';
import { isOperatorError } from '../errors.js';

export const DEFAULT_PORTS: readonly number[] = [443, 80];

function compiled<T>(parse: (text: string) => T): z.ZodType<T, string> {
  return z.string().transform((text, context) => {
    try {
      return parse(text);
    } catch (error) {
      if (!isOperatorError(error, 'RULE_PATTERN_INVALID')) throw error;
      context.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  });
}

// RFC 9110 §5.6.2 token: what a method may be spelt with.
const methodToken = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'a method is an HTTP token such as GET or POST')
  .transform((method) => method.toUpperCase());

/** zod's own text for a missing key ("expected array, received undefined") does not say "required". */
function required(what: string): { error: (issue: { input: unknown }) => string } {
  return { error: (issue) => (issue.input === undefined ? `required: ${what}` : `expected ${what}`) };
}

const port = z.number({ error: 'a port is a number' }).int('a port is a whole number').min(1, 'ports are 1..65535').max(65535, 'ports are 1..65535');

export const ruleSchema = z
  .strictObject({
    id: z.string(required('a rule id')).regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'ids are 1-128 characters of a-z 0-9 . _ - starting with a letter or digit'),
    action: z.enum(['allow', 'deny'], required('an action, allow or deny')),
    hosts: z.array(compiled<HostPattern>(parseHostPattern), required('a list of hosts')).min(1, 'list at least one host'),
    include_subdomains: z.boolean().default(false),
    ports: z.array(port).min(1, 'list at least one port, or leave ports out for 443 and 80').optional(),
    // An empty list would silently make a deny rule deny nobody: leave the key out instead.
    agents: z.array(z.string().min(1)).min(1, 'list at least one agent, or leave agents out').optional(),
    groups: z.array(z.string().min(1)).min(1, 'list at least one group, or leave groups out').optional(),
    methods: z.array(methodToken).min(1).optional(),
    paths: z.array(compiled<PathPattern>(parsePathPattern)).min(1).optional(),
    description: z.string().optional(),
    /** lets this allow rule pass a host a malicious-domain blocklist lists; audited on every use */
    override_blocklist: z.boolean().default(false),
  })
  .superRefine((rule, context) => {
    if (rule.override_blocklist && rule.action !== 'allow') {
      context.addIssue({ code: 'custom', path: ['override_blocklist'], message: 'override_blocklist only makes sense on an allow rule' });
    }
    if (!rule.include_subdomains) return;
    rule.hosts.forEach((host, index) => {
      if (host.kind !== 'exact' || !host.isName) return;
      try {
        checkSubdomainBase(host.host, `include_subdomains on "${host.host}"`);
      } catch (error) {
        if (!isOperatorError(error, 'RULE_PATTERN_INVALID')) throw error;
        context.addIssue({ code: 'custom', path: ['hosts', index], message: error.message });
      }
    });
  });

export const ruleFileSchema = z.strictObject({
  rules: z.array(ruleSchema, required('a list of rules')),
});

export type RuleSpec = z.output<typeof ruleSchema>;
export type RuleFileSpec = z.output<typeof ruleFileSchema>;
