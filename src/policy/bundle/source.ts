// The contract every bundle source meets (local file, HTTPS URL, OCI registry): fetch the
// allowlist bytes with their evidence, or say nothing changed since the last fetch.
import type { Candidate } from './accept.js';

export type FetchResult = { readonly kind: 'fetched'; readonly candidate: Candidate } | { readonly kind: 'not_modified' };

export interface BundleSource {
  /** for messages and audit records; never holds credentials */
  readonly description: string;
  /** throws BUNDLE_FETCH_FAILED (an OperatorError) on any transport or protocol failure; never returns partial content */
  fetch(signal: AbortSignal): Promise<FetchResult>;
  /** file sources call onChange when the files may have changed; returns the unsubscribe */
  watch?(onChange: () => void): () => void;
  /** forget cached validators (ETag, digests) after a refused fetch, so a 304 cannot vouch for it */
  invalidate?(): void;
  /** release sockets and timers */
  close?(): Promise<void>;
}
