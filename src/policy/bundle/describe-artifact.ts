// A one-line summary of a verified artifact when it is an allowlist bundle document, so the
// operator sees which version and how many rules the signature vouches for.
import { parse } from 'yaml';
import { isRecord } from './trusted-root.js';

export function describeBundleArtifact(artifact: Buffer, source: string): string | undefined {
  let document: unknown;
  try {
    document = parse(artifact.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(document) || typeof document['version'] !== 'number' || !Array.isArray(document['rules'])) return undefined;
  const name = typeof document['name'] === 'string' ? document['name'] : source;
  const enforce = typeof document['enforce'] === 'string' ? document['enforce'] : 'enforce';
  return `bundle: ${name} version ${document['version']}, ${document['rules'].length} rules, ${enforce} mode`;
}
