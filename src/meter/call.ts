// What the forwarding code sees of metering: one MeteredCall per inference request, asked to
// admit the buffered body, to tap the response as it streams, and told once how the call ended.
import type { Transform } from 'node:stream';
import type { Agent } from '../agent.js';

/** A provider-shaped refusal (over budget, store unusable) answered inside the agent's TLS session. */
export interface InferenceRefusal {
  readonly kind: 'refuse';
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  /** the catalogue code recorded as the exchange's outcome */
  readonly code: 'BUDGET_EXCEEDED' | 'BUDGET_STORE_UNUSABLE' | 'INFERENCE_BODY_INVALID';
}

export type AdmitVerdict = { readonly kind: 'send'; readonly body: Buffer } | InferenceRefusal;

export interface MeteredCall {
  /** request bodies larger than this are refused: inference bodies are buffered to be read */
  readonly maxBodyBytes: number;
  /** reserves against the agent's budgets; returns the body to send (bounds clamped) or a refusal */
  admit(body: Buffer): Promise<AdmitVerdict>;
  /**
   * The transform the upstream response flows through to the agent: reads usage as bytes pass,
   * strips what Sluice asked for on its own, cuts a stream that outruns its reservation. `strips`
   * says whether bytes may be changed (the Content-Length must then go).
   */
  respond(statusCode: number, contentType: string | undefined): { readonly tap: Transform; readonly rewrites: boolean };
  /** settles exactly once: a cut or abandoned call is charged its reservation, never zero */
  finish(outcome: 'complete' | 'aborted'): void;
}

export interface CallFacts {
  readonly requestId: string;
  /** the agent Sluice identified, never anything the agent sent */
  readonly agent: Agent;
  readonly host: string;
  readonly method: string;
  /** path and query as sent */
  readonly path: string;
}

/** The metering stage as ingress holds it. */
export interface InferenceMetering {
  /** hosts whose TLS is intercepted and whose calls are metered */
  isInferenceHost(host: string): boolean;
  /** the call to meter, or null when the request is not an inference call (model lists, count_tokens) */
  open(facts: CallFacts): MeteredCall | null;
}
