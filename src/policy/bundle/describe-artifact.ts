// A one-line summary of a verified artifact when it is an allowlist bundle document, so the
// operator sees which version and how many rules the signature vouches for.
import { SourceError } from '../../config/yaml.js';
import { looksLikeBundle, parseBundleText } from './document.js';
import { BundleRejection } from './rejection.js';

/** Undefined for an artifact that is not a bundle; throws BundleRejection for a broken bundle. */
export function describeBundleArtifact(artifact: Buffer, source: string): string | undefined {
  const text = artifact.toString('utf8');
  if (!looksLikeBundle(text)) return undefined;
  try {
    const bundle = parseBundleText(source, text);
    const expiry = bundle.expiresAt === undefined ? 'no expiry' : `expires ${bundle.expiresAt.toISOString()}`;
    return `bundle: ${bundle.name} version ${bundle.version}, ${bundle.ruleSet.size} rules, ${bundle.enforce} mode, issued ${bundle.issuedAt.toISOString()}, ${expiry}`;
  } catch (error) {
    if (error instanceof SourceError) throw new BundleRejection('schema_error', `signature verified but the bundle is invalid:\n${error.message}`);
    throw error;
  }
}
