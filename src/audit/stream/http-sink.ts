// Delivers audit batches to an HTTP receiver: a plain JSON-lines webhook, Splunk HEC or Elastic's
// bulk API. A batch counts as delivered only on the receiver's success answer.
import { Agent, request } from 'undici';
import { OperatorError } from '../../errors.js';
import { toOcsf, type OcsfOptions } from '../export.js';
import type { AuditRecord } from '../record.js';
import type { StreamSink } from './sink.js';

export type HttpPreset =
  | { readonly kind: 'webhook'; readonly format: 'jsonl' }
  /** one OCSF 1.8.0 event per line (docs/ocsf.md); records of kinds OCSF has no class for are left out */
  | { readonly kind: 'webhook'; readonly format: 'ocsf'; readonly ocsf: OcsfOptions }
  /** events concatenated, each wrapping one record (docs.splunk.com HEC /services/collector/event) */
  | { readonly kind: 'splunk_hec'; readonly sourcetype: string; readonly index?: string }
  /** `create` actions keyed by the record hash, so a resent record answers 409 instead of duplicating */
  | { readonly kind: 'elastic'; readonly index: string };

export interface HttpSinkOptions {
  /** the full endpoint the batch is POSTed to */
  readonly url: URL;
  readonly preset: HttpPreset;
  /** sent with every batch; secrets already read from their file or variable */
  readonly headers: Readonly<Record<string, string>>;
  /** extra trust anchors (PEM) beside the system store */
  readonly ca?: string;
  readonly verifyTls: boolean;
  readonly timeoutMs: number;
}

/** What is sent for one batch: its content type and body. */
export function encodeBatch(preset: HttpPreset, records: readonly AuditRecord[]): { readonly contentType: string; readonly body: string } {
  switch (preset.kind) {
    case 'webhook':
      if (preset.format === 'ocsf') return { contentType: 'application/x-ndjson', body: records.flatMap((record) => toOcsf(record, preset.ocsf)).map((event) => `${JSON.stringify(event)}\n`).join('') };
      return { contentType: 'application/x-ndjson', body: records.map((record) => `${JSON.stringify(record)}\n`).join('') };
    case 'splunk_hec':
      return {
        contentType: 'application/json',
        body: records
          .map((record) =>
            JSON.stringify({
              time: Date.parse(record.ts) / 1000,
              source: 'sluice',
              sourcetype: preset.sourcetype,
              ...(preset.index === undefined ? {} : { index: preset.index }),
              event: record,
            }),
          )
          .join(''),
      };
    case 'elastic':
      return {
        contentType: 'application/x-ndjson',
        body: records
          .map((record) => `${JSON.stringify({ create: { _index: preset.index, _id: record.hash } })}\n${JSON.stringify({ '@timestamp': record.ts, ...record })}\n`)
          .join(''),
      };
  }
}

interface BulkItem {
  readonly create?: { readonly status?: number; readonly error?: { readonly type?: string; readonly reason?: string } };
}

/** Throws unless the answer says every record was taken (for Elastic, 409 = already there). */
export function checkAnswer(preset: HttpPreset, url: URL, status: number, body: string): void {
  if (status < 200 || status > 299) throw delivery(`${url.origin}${url.pathname} answered ${status}: ${body.slice(0, 200)}`);
  if (preset.kind !== 'elastic') return;
  let answer: { readonly errors?: boolean; readonly items?: readonly BulkItem[] };
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    throw delivery(`${url.origin}${url.pathname} answered ${status} with a body that is not JSON`);
  }
  if (answer.errors !== true) return;
  for (const item of answer.items ?? []) {
    const itemStatus = item.create?.status ?? 0;
    if ((itemStatus >= 200 && itemStatus <= 299) || itemStatus === 409) continue;
    const why = item.create?.error;
    throw delivery(`${url.origin}${url.pathname} refused a record (${itemStatus}): ${why?.type ?? '?'}: ${why?.reason ?? ''}`);
  }
}

export class HttpSink implements StreamSink {
  readonly #options: HttpSinkOptions;
  readonly #agent: Agent;

  constructor(options: HttpSinkOptions) {
    this.#options = options;
    this.#agent = new Agent({
      connect: { rejectUnauthorized: options.verifyTls, ...(options.ca === undefined ? {} : { ca: options.ca }), timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
  }

  get target(): string {
    return this.#options.url.origin;
  }

  async deliver(records: readonly AuditRecord[]): Promise<void> {
    const { url, preset, headers } = this.#options;
    const { contentType, body } = encodeBatch(preset, records);
    // A batch of records OCSF has no class for sends nothing: it counts as delivered and the cursor moves on.
    if (body === '') return;
    let answer: { status: number; body: string };
    try {
      const response = await request(url, { method: 'POST', dispatcher: this.#agent, headers: { ...headers, 'content-type': contentType }, body });
      answer = { status: response.statusCode, body: await response.body.text() };
    } catch (error) {
      throw delivery(`${url.origin}${url.pathname}: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    checkAnswer(preset, url, answer.status, answer.body);
  }

  close(): Promise<void> {
    return this.#agent.destroy();
  }
}

function delivery(message: string, cause?: unknown): OperatorError {
  return new OperatorError('AUDIT_STREAM_DELIVERY', message, cause === undefined ? undefined : { cause });
}
