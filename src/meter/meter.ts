// The metering stage: for each inference call, reserve against the agent's budgets (clamping the
// output bound to fit), pass the response through as it streams while reading its usage, and
// settle once: journal first (durable), then counters, metrics and the audit record.
import { Transform, type TransformCallback } from 'node:stream';
import type { Agent } from '../agent.js';
import { inferenceEntry, type AuditLog, type InferenceEntry } from '../audit/kinds.js';
import type { ConfigFile } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import { apiOf, estimateTokens, providerOf, readRequest, withOutputBound, withStreamUsage, type InferenceApi, type InferenceRequest } from './api-shape.js';
import type { BudgetAccounts, Unavailable } from './budget-accounts.js';
import type { Reservation } from './budgets.js';
import type { AdmitVerdict, CallFacts, InferenceMetering, InferenceRefusal, MeteredCall } from './call.js';
import { InferenceHosts } from './inference-hosts.js';
import { errorResponse, streamErrorEvent, type ProviderError } from './provider-errors.js';
import { SseSplitter } from './sse.js';
import { StreamUsage, usageOfJson, type Usage } from './usage.js';
import { WINDOWS } from './windows.js';

export interface MeterOptions {
  readonly hosts: InferenceHosts;
  /** the budgets: this host's journal, or a fleet's shared store */
  readonly accounts: BudgetAccounts;
  readonly maxBodyBytes: number;
  /** the output bound injected when an agent with a budget sets none and no per_request cap applies */
  readonly defaultOutputBound: number;
  /** model label values; any other model is counted as "other" */
  readonly models: readonly string[];
  readonly metrics: Metrics;
  readonly audit: AuditLog;
  readonly log: Logger;
  /** the clock budget windows are judged by; the ledger shares it */
  readonly now: () => number;
}

// A JSON response is read for its usage up to this size; past it the call is charged an estimate.
const MAX_JSON_USAGE_BYTES = 16 * 1_048_576;

const NO_USAGE: Usage = { input: 0, output: 0 };

type Settlement = Pick<InferenceEntry, 'outcome' | 'estimated'> & { readonly usage: Usage };

/** The meter the config's `inference:` section asks for, keeping its accounts where `parts` says. */
export function meterFor(inference: ConfigFile['inference'], parts: Pick<MeterOptions, 'accounts' | 'metrics' | 'audit' | 'log' | 'now'>): InferenceMeter {
  return new InferenceMeter({
    hosts: new InferenceHosts(inference.hosts),
    maxBodyBytes: inference.max_body_bytes,
    defaultOutputBound: inference.default_output_tokens,
    models: inference.models,
    ...parts,
  });
}

export class InferenceMeter implements InferenceMetering {
  private readonly models: ReadonlySet<string>;

  constructor(readonly options: MeterOptions) {
    this.models = new Set(options.models);
  }

  isInferenceHost(host: string): boolean {
    return this.options.hosts.has(host);
  }

  open(facts: CallFacts): MeteredCall | null {
    const api = apiOf(facts.method, facts.path);
    return api === null ? null : new InferenceCall(this, facts, api);
  }

  /**
   * A call counts as settled once the accounts hold it durably (the journal's line, Redis's
   * answer). Until then its reservation keeps holding its tokens, so GET /v1/budgets and the token
   * metrics never show usage a kill -9 could take back. A failed settlement keeps the reservation
   * held; the call's audit record is written either way.
   */
  settle(facts: CallFacts, api: InferenceApi, model: string, reservation: Reservation, settlement: Settlement, clampedTo: number | null): void {
    const { accounts, metrics, log } = this.options;
    const { usage } = settlement;
    const recorded = (): void => this.record(facts, api, model, { ...settlement, reserved: reservation.tokens, clamped_to: clampedTo, limit: null, budget: null });
    accounts
      .settle(reservation, { at: this.options.now(), request_id: facts.requestId, agent: facts.agent.name, subjects: reservation.subjects, model, input: usage.input, output: usage.output, estimated: settlement.estimated })
      .then(
        () => {
          const label = { agent: facts.agent.name, model: this.models.has(model) ? model : 'other' };
          metrics.inferenceTokens.inc({ ...label, direction: 'input' }, usage.input);
          metrics.inferenceTokens.inc({ ...label, direction: 'output' }, usage.output);
          recorded();
        },
        (error: unknown) => {
          log.error({ err: error, request_id: facts.requestId }, 'budget settlement failed; see the budget store failure');
          recorded();
        },
      );
  }

  record(facts: CallFacts, api: InferenceApi, model: string, fields: Pick<InferenceEntry, 'outcome' | 'estimated' | 'reserved' | 'clamped_to' | 'limit' | 'budget'> & { readonly usage: Usage }): void {
    const { usage, ...rest } = fields;
    const entry = inferenceEntry({ request_id: facts.requestId, agent: facts.agent.name, api, model, input_tokens: usage.input, output_tokens: usage.output, ...rest });
    // Nothing waits on this record (the usage is already durable in the budget journal): it rides
    // the next decision's commit rather than costing the next call's decision a flush of its own.
    this.options.audit.append(entry, 'with_next_commit').catch((error: unknown) => this.options.log.error({ err: error, request_id: facts.requestId }, 'audit append of inference record failed'));
  }

  /** sluice_inference_budget_used_ratio for every subject with a limit (left as it was while the store cannot answer). */
  showBudgets(): Promise<void> {
    return this.options.accounts.report().then(
      (reports) => {
        for (const report of reports) {
          const name = report.subject.startsWith('agent:') ? report.subject.slice('agent:'.length) : report.subject;
          for (const window of WINDOWS) {
            const { limit, used } = report.windows[window];
            if (limit !== null) this.options.metrics.inferenceBudgetUsedRatio.set({ agent: name, window }, used / limit);
          }
        }
      },
      (error: unknown) => this.options.log.warn({ err: error }, 'budget gauges not updated: the budget store did not answer'),
    );
  }

  budgeted(agent: Agent): boolean {
    return this.options.accounts.limits.isBudgeted(agent);
  }
}

class InferenceCall implements MeteredCall {
  readonly maxBodyBytes: number;
  private request: InferenceRequest | undefined;
  private reservation: Reservation | undefined;
  private clampedTo: number | null = null;
  private addedStreamUsage = false;
  private inputEstimate = 0;
  private streamUsage: StreamUsage | undefined;
  private jsonUsage: Usage | undefined;
  private responseBytes = 0;
  private charged = true;
  private cut = false;
  private settled = false;

  constructor(
    private readonly meter: InferenceMeter,
    private readonly facts: CallFacts,
    private readonly api: InferenceApi,
  ) {
    this.maxBodyBytes = meter.options.maxBodyBytes;
  }

  private refusal(code: InferenceRefusal['code'], error: ProviderError, retryAfter: number | undefined): InferenceRefusal {
    const { headers, body } = errorResponse(providerOf(this.api), error, retryAfter);
    return { kind: 'refuse', status: error.status, headers, body, code };
  }

  async admit(body: Buffer): Promise<AdmitVerdict> {
    const { accounts, defaultOutputBound } = this.meter.options;
    if (accounts.failure !== null) return this.unavailable('unknown', accounts.failure.code);
    let request: InferenceRequest;
    try {
      request = readRequest(this.api, this.facts.path, body);
    } catch (error) {
      this.settled = true;
      return this.refusal('INFERENCE_BODY_INVALID', { status: 400, code: 'invalid_request_error', message: `Sluice could not meter this request: ${(error as Error).message}` }, undefined);
    }
    this.request = request;
    this.inputEstimate = estimateTokens(body.length);
    const plan = await accounts.plan({ agent: this.facts.agent, inputEstimate: this.inputEstimate, outputBound: request.outputBound, choices: request.choices, defaultBound: defaultOutputBound });
    if (plan.kind === 'unavailable') return this.unavailable(request.model, plan.code);
    if (plan.kind === 'over') {
      this.settled = true;
      const window = plan.limit === 'per_request' ? 'per-request' : plan.limit;
      const message = `Token budget exceeded: ${plan.subject} has no ${window} tokens left for this request (Sluice).`;
      this.meter.record(this.facts, this.api, request.model, { outcome: 'over_budget', estimated: false, reserved: 0, clamped_to: null, limit: plan.limit, budget: plan.subject, usage: NO_USAGE });
      return this.refusal('BUDGET_EXCEEDED', { status: 429, code: 'budget_exceeded', message }, plan.retryAfterSeconds);
    }
    this.reservation = plan.reservation;
    let rewritten: Record<string, unknown> | null = null;
    if (plan.bound !== undefined && plan.bound !== request.outputBound) {
      rewritten = withOutputBound(request, plan.bound);
      this.clampedTo = plan.bound;
    }
    const withUsage = withStreamUsage(request, rewritten ?? request.body);
    if (withUsage !== null) {
      rewritten = withUsage;
      this.addedStreamUsage = true;
    }
    return { kind: 'send', body: rewritten === null ? body : Buffer.from(JSON.stringify(rewritten)) };
  }

  /** Fail closed: with budgets that cannot be read or reached, no call is sent; the refusal is audited. */
  private unavailable(model: string, code: Unavailable['code']): InferenceRefusal {
    this.settled = true;
    const unusable = code === 'BUDGET_STORE_UNUSABLE';
    this.meter.record(this.facts, this.api, model, { outcome: unusable ? 'store_unusable' : 'store_unreachable', estimated: false, reserved: 0, clamped_to: null, limit: null, budget: null, usage: NO_USAGE });
    const message = unusable
      ? 'Sluice cannot read its inference budget store; inference is refused until an operator acts.'
      : 'Sluice cannot reach the shared budget store (Redis); inference is refused until it is back.';
    return this.refusal(code, { status: 503, code: code.toLowerCase(), message }, undefined);
  }

  respond(statusCode: number, contentType: string | undefined): { tap: Transform; rewrites: boolean } {
    // Providers do not bill refused or failed calls; SDK retries then count as one logical call.
    if (statusCode < 200 || statusCode >= 300) {
      this.charged = false;
      return { tap: new Transform({ transform: (chunk, _encoding, done) => done(null, chunk) }), rewrites: false };
    }
    if (contentType?.toLowerCase().startsWith('text/event-stream') === true) return { tap: this.streamTap(), rewrites: true };
    return { tap: this.jsonTap(), rewrites: false };
  }

  private jsonTap(): Transform {
    const chunks: Buffer[] = [];
    return new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        this.responseBytes += chunk.length;
        if (this.responseBytes <= MAX_JSON_USAGE_BYTES) chunks.push(chunk);
        done(null, chunk);
      },
      flush: (done: TransformCallback) => {
        if (this.responseBytes <= MAX_JSON_USAGE_BYTES) this.jsonUsage = usageOfJson(this.api, Buffer.concat(chunks).toString('utf8'));
        this.finish('complete');
        done();
      },
    });
  }

  private streamTap(): Transform {
    const splitter = new SseSplitter();
    const usage = new StreamUsage(this.api, this.addedStreamUsage);
    this.streamUsage = usage;
    const outputLimit = this.clampedTo ?? this.request?.outputBound;
    const choices = this.request?.choices ?? 1;
    const budgeted = this.meter.budgeted(this.facts.agent);
    const tap: Transform = new Transform({
      transform: (chunk: Buffer, _encoding, done: TransformCallback) => {
        this.responseBytes += chunk.length;
        if (this.cut) return done();
        // What a chunk completes goes on as one write: one TLS record to the agent, not one per event.
        const passed: Buffer[] = [];
        for (const event of splitter.push(chunk)) {
          if (usage.read(event).strip) continue;
          passed.push(event.raw);
          const output = usage.usage()?.output ?? 0;
          if (budgeted && outputLimit !== undefined && output > outputLimit * choices) {
            // Past its reservation: end the agent's stream with an error event the SDK raises,
            // never a silent close it would take for a normal end.
            this.cut = true;
            const message = `Token budget exceeded: the response ran past the ${outputLimit * choices} output tokens reserved for it (Sluice).`;
            passed.push(Buffer.from(streamErrorEvent(this.api, providerOf(this.api), { status: 429, code: 'budget_exceeded', message })));
            break;
          }
        }
        if (passed.length > 0) tap.push(passed.length === 1 ? passed[0] : Buffer.concat(passed));
        if (this.cut) {
          tap.push(null);
          this.finish('aborted');
        }
        done();
      },
      flush: (done: TransformCallback) => {
        if (!this.cut) {
          const rest = splitter.rest();
          if (rest.length > 0) tap.push(rest);
          this.finish('complete');
        }
        done();
      },
    });
    return tap;
  }

  finish(outcome: 'complete' | 'aborted'): void {
    if (this.settled || this.request === undefined || this.reservation === undefined) return;
    this.settled = true;
    const reservation = this.reservation;
    const request = this.request;
    if (!this.charged) {
      this.meter.settle(this.facts, this.api, request.model, reservation, { outcome: 'settled', estimated: false, usage: { input: 0, output: 0 } }, this.clampedTo);
      return;
    }
    const reported = this.streamUsage?.usage() ?? this.jsonUsage;
    const streamed = this.streamUsage !== undefined;
    let settlement: Settlement;
    if (outcome === 'complete' && reported !== undefined && !this.cut) {
      settlement = { outcome: 'settled', estimated: false, usage: reported };
    } else if (outcome === 'complete' && !streamed && !this.cut) {
      // A JSON answer without usage: the documented bytes-based estimate, marked as such.
      settlement = { outcome: 'settled', estimated: true, usage: { input: this.inputEstimate, output: estimateTokens(this.responseBytes) } };
    } else {
      // Cut, abandoned, or a stream that never reported usage: the whole reservation, never zero.
      const input = Math.max(reported?.input ?? 0, this.inputEstimate);
      const output = Math.max(reported?.output ?? 0, reservation.tokens - this.inputEstimate, estimateTokens(this.responseBytes));
      settlement = { outcome: this.cut ? 'cut' : outcome === 'aborted' ? 'aborted' : 'settled', estimated: true, usage: { input, output } };
    }
    this.meter.settle(this.facts, this.api, request.model, reservation, settlement, this.clampedTo);
  }
}
