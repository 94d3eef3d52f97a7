// What the sluice.yaml loader says about a config text it must refuse: every issue, each as
// `sluice.yaml:line:column: path: message`, for tests of precise configuration errors.
import assert from 'node:assert/strict';
import { configSchema } from '../../src/config/schema.js';
import { loadYamlText, SourceError } from '../../src/config/yaml.js';

export function configIssues(yaml: string): string {
  try {
    loadYamlText('sluice.yaml', yaml, configSchema);
  } catch (error) {
    assert.ok(error instanceof SourceError, String(error));
    return error.message;
  }
  assert.fail('expected the config to be refused');
}
