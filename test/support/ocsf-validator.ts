// Compiles OCSF JSON Schemas with Ajv (draft 2020-12, strict, formats asserted) so a test can
// validate an event and read exactly which keyword at which path refused it.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/** dist/test/support → the committed schemas in the source tree */
const OCSF_FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'ocsf', '1.8.0');

export type OcsfValidate = (event: unknown) => readonly ErrorObject[];

export function ocsfValidator(schema: object): OcsfValidate {
  // strictRequired stays off: OCSF's `at_least_one` constraints list attributes in `required`
  // under anyOf, where Ajv would otherwise want each one redeclared.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
  addFormats.default(ajv);
  const validate = ajv.compile(schema);
  return (event) => (validate(event) ? [] : [...(validate.errors ?? [])]);
}

export async function readOcsfSchema(className: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(OCSF_FIXTURES, `${className}.schema.json`), 'utf8')) as Record<string, unknown>;
}
