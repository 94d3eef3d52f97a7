// Loads a sigstore trusted_root.json (Fulcio CAs, Rekor keys, CT logs, TSAs) for offline keyless
// verification, refusing roots the library would read too leniently.
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { PUBLIC_GOOD_TRUSTED_ROOT } from './public-good-root.js';
import { BundleRejection, isBundleRejection } from './rejection.js';
import { messageOf } from './public-key.js';

export interface TrustRoot {
  readonly source: string;
  readonly root: TrustedRoot;
}

const MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.trustedroot';

export function parseTrustedRoot(text: string, source: string): TrustRoot {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BundleRejection('malformed', `${source}: trusted root is not JSON (${messageOf(error)})`);
  }
  return trustRootFromJson(json, source);
}

export function publicGoodTrustRoot(): TrustRoot {
  return trustRootFromJson(PUBLIC_GOOD_TRUSTED_ROOT, 'embedded sigstore public-good trusted root');
}

function trustRootFromJson(json: unknown, source: string): TrustRoot {
  try {
    if (!isRecord(json) || typeof json['mediaType'] !== 'string' || !json['mediaType'].startsWith(MEDIA_TYPE_PREFIX)) {
      throw new BundleRejection('malformed', `${source}: mediaType is not ${MEDIA_TYPE_PREFIX}+json`);
    }
    requireValidityStarts(json, source);
    return { source, root: TrustedRoot.fromJSON(json) };
  } catch (error) {
    if (isBundleRejection(error)) throw error;
    throw new BundleRejection('malformed', `${source}: ${messageOf(error)}`);
  }
}

/**
 * @sigstore/verify treats a missing `validFor.start` as the beginning of time, which would let a
 * key or CA vouch for signatures made before it existed; the trust-root spec makes `start`
 * required, so a root without it is refused as a whole (conformance: tlog-missing-validity-start).
 */
function requireValidityStarts(json: Record<string, unknown>, source: string): void {
  const sections: readonly (readonly [string, (entry: Record<string, unknown>) => unknown])[] = [
    ['tlogs', (entry) => (isRecord(entry['publicKey']) ? entry['publicKey']['validFor'] : undefined)],
    ['ctlogs', (entry) => (isRecord(entry['publicKey']) ? entry['publicKey']['validFor'] : undefined)],
    ['certificateAuthorities', (entry) => entry['validFor']],
    ['timestampAuthorities', (entry) => entry['validFor']],
  ];
  for (const [section, validForOf] of sections) {
    const entries = json[section];
    if (entries === undefined) continue;
    if (!Array.isArray(entries)) throw new BundleRejection('malformed', `${source}: ${section} is not a list`);
    entries.forEach((entry: unknown, index) => {
      const validFor = isRecord(entry) ? validForOf(entry) : undefined;
      if (!isRecord(validFor) || typeof validFor['start'] !== 'string' || Number.isNaN(Date.parse(validFor['start']))) {
        throw new BundleRejection('malformed', `${source}: ${section}[${index}] has no valid validFor.start`);
      }
    });
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
