// Names of model API hosts Sluice knows of, metered by default or not, as concrete hosts a rule
// set can be asked about: `sluice check` warns when a rule allows one that inference.hosts misses.
import { DEFAULT_INFERENCE_HOSTS } from '../config/schema.js';

/** A host under each default pattern, plus well-known APIs in formats Sluice does not meter. */
export const KNOWN_INFERENCE_HOSTS: readonly string[] = [
  ...DEFAULT_INFERENCE_HOSTS.map((pattern) => (pattern.startsWith('*.') ? `example.${pattern.slice(2)}` : pattern)),
  'api.cohere.com',
  'api.cohere.ai',
  'bedrock-runtime.us-east-1.amazonaws.com',
  'us-central1-aiplatform.googleapis.com',
  'api.fireworks.ai',
  'api.perplexity.ai',
  'api.cerebras.ai',
];
