// The allowlist bundle document: a header (name, version, issued_at, expires_at, enforce) over the
// same `rules:` schema as rules/, parsed with file:line:column errors into a compiled RuleSet.
import { z } from 'zod';
import { BUNDLE_NAME, BUNDLE_NAME_RULE } from '../../config/schema.js';
import { parseYaml, SourceError, validate } from '../../config/yaml.js';
import { ruleSchema } from '../rule-schema.js';
import { compileRules } from '../rules.js';
import type { RuleSet } from '../rule-set.js';

export type EnforceMode = 'enforce' | 'report';

export interface BundleDocument {
  readonly name: string;
  readonly version: number;
  readonly issuedAt: Date;
  readonly expiresAt: Date | undefined;
  readonly enforce: EnforceMode;
  readonly ruleSet: RuleSet;
}

// RFC 3339 with an explicit offset: a bundle read on appliances in several zones must expire at one instant.
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const timestamp = z
  .string({ error: 'a timestamp such as 2026-11-23T12:00:00Z' })
  .regex(RFC3339, 'an RFC 3339 timestamp with a zone, such as 2026-11-23T12:00:00Z')
  .refine((text) => !Number.isNaN(Date.parse(text)), 'not a real date')
  .transform((text) => new Date(text));

export const bundleDocumentSchema = z
  .strictObject({
    name: z.string({ error: 'required: the bundle name' }).regex(BUNDLE_NAME, BUNDLE_NAME_RULE),
    version: z.number({ error: 'required: an integer version' }).int('the version is a whole number').min(1, 'versions start at 1').max(Number.MAX_SAFE_INTEGER),
    issued_at: timestamp,
    expires_at: timestamp.optional(),
    enforce: z.enum(['enforce', 'report'], { error: 'enforce is "enforce" or "report"' }).default('enforce'),
    rules: z.array(ruleSchema, { error: 'required: a list of rules' }),
  })
  .refine((doc) => doc.expires_at === undefined || doc.expires_at > doc.issued_at, { message: 'expires_at must be after issued_at', path: ['expires_at'] });

/** Parses verified bundle text; throws SourceError listing every problem at its line and column. */
export function parseBundleText(file: string, text: string): BundleDocument {
  const parsed = parseYaml(file, text);
  if (parsed.issues.length > 0) throw new SourceError(parsed.issues);
  let checked: ReturnType<typeof validate<typeof bundleDocumentSchema>>;
  try {
    checked = validate(parsed.source, bundleDocumentSchema);
  } catch (error) {
    throw new SourceError([{ file, line: 1, column: 1, message: `cannot read bundle: ${error instanceof Error ? error.message : String(error)}` }]);
  }
  const value = checked.value;
  if (value === undefined || checked.issues.length > 0) throw new SourceError(checked.issues);
  const ruleSet = compileRules([{ file, source: parsed.source, spec: { rules: value.rules } }]);
  return {
    name: value.name,
    version: value.version,
    issuedAt: value.issued_at,
    expiresAt: value.expires_at,
    enforce: value.enforce,
    ruleSet,
  };
}

/** True when the YAML looks like a bundle (has the header), so `sluice check` can route it here. */
export function looksLikeBundle(text: string): boolean {
  return /^version:\s*\d/m.test(text) && /^rules:/m.test(text);
}
