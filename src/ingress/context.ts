// Per-request state carried through the pipeline in one object: who, where, what was decided,
// timings and byte counts. Audit records and log lines are built from it.
import cluster from 'node:cluster';
import type { Agent } from '../agent.js';
import type { Decision } from '../policy/decision.js';
import type { Destination } from '../destination.js';
import type { RequestSpan } from '../obs/tracing.js';

export type RequestKind = 'tunnel' | 'forward' | 'upgrade';

/** Which listener the agent reached: its own proxy setting, or the guard's redirect of port 80 or 443. */
export type Ingress = 'explicit' | 'transparent_http' | 'transparent_tls';

let counter = 0;
// Workers (workers: N) start in the same millisecond: each adds its cluster id, never reused
// while the primary runs, so ids stay unique across workers and the ones restarted.
const boot = cluster.isWorker && cluster.worker !== undefined ? `${Date.now().toString(36)}-w${cluster.worker.id}` : Date.now().toString(36);

/** Unique within this process, across workers and across restarts (boot time prefix); cheap on the hot path. */
export function nextRequestId(): string {
  counter += 1;
  return `${boot}-${counter.toString(36)}`;
}

export interface RequestContext {
  readonly id: string;
  readonly kind: RequestKind;
  readonly ingress: Ingress;
  readonly startedAt: number;
  readonly client: string;
  readonly method: string;
  destination?: Destination;
  /** path without the query string: queries often carry secrets */
  path?: string;
  agent?: Agent;
  decision?: Decision;
  /** the signed bundle version the decision was taken under; null for local rules */
  bundleVersion?: number | null;
  /** why the connect stage refused an address the policy had allowed */
  forbidden?: { readonly addressClass: string; readonly address: string };
  /** the parent proxy (`host:port`) the connection goes through, when connect.upstream_proxy routes it */
  parentProxy?: string;
  /** the vetted address actually connected to (the parent proxy's, through one) */
  upstream?: string;
  bytesUp: number;
  bytesDown: number;
  /** gives back the agent's concurrency slot (agents[].limits.max_concurrent) when the request ends */
  release?: () => void;
  /** the request's OpenTelemetry span, when otel.endpoint is set; its trace id is audited */
  span?: RequestSpan;
  /** an admitted tunnel's decision metric, held until its first bytes are judged: counted once */
  uncounted?: { readonly verdict: string; readonly reason: string };
}

export function newContext(kind: RequestKind, ingress: Ingress, client: string, method: string): RequestContext {
  return { id: nextRequestId(), kind, ingress, startedAt: performance.now(), client, method, bytesUp: 0, bytesDown: 0 };
}

export function pathWithoutQuery(path: string): string {
  const query = path.indexOf('?');
  return query < 0 ? path : path.slice(0, query);
}
