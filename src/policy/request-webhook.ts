// Announces each new access request to approvals.webhook_url (a chat bot, a ticket system): a JSON
// POST signed with HMAC-SHA256, retried with back-off, never in the way of the request that caused it.
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { ApprovalsConfig } from '../config/schema.js';
import { OperatorError } from '../errors.js';
import { realTimer, type Schedule, type Scheduled } from '../audit/schedule.js';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';
import type { AccessRequest } from './access-requests.js';

export const SIGNATURE_HEADER = 'X-Sluice-Signature';

export interface RequestWebhookOptions {
  readonly url: string;
  /** the HMAC-SHA256 key; receivers recompute the signature over the raw body with it */
  readonly secret: string;
  readonly timeoutMs: number;
  /** further attempts after a failed one */
  readonly retries: number;
  readonly schedule?: Schedule;
  readonly metrics?: Pick<Metrics, 'webhookDeliveries'>;
  readonly log?: Logger;
  readonly now?: () => Date;
}

/** Announcements in flight or waiting to retry; past this a burst of new requests is dropped, not queued without bound. */
const MAX_OUTSTANDING = 1000;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 300_000;

/** `sha256=<hex>` of HMAC-SHA256(secret, body): GitHub's webhook convention, so existing receivers verify it. */
export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}

export class RequestWebhook {
  readonly #retries = new Set<Scheduled>();
  readonly #inFlight = new Set<AbortController>();
  #outstanding = 0;
  #closed = false;

  constructor(private readonly options: RequestWebhookOptions) {}

  /** Queues the announcement and returns at once. */
  announce(request: AccessRequest): void {
    if (this.#closed) return;
    if (this.#outstanding >= MAX_OUTSTANDING) {
      this.#count('dropped');
      this.options.log?.warn({ request: request.id }, 'approval webhook backlog full; announcement dropped');
      return;
    }
    const body = JSON.stringify({
      event: 'access_request.created',
      sent_at: (this.options.now ?? (() => new Date()))().toISOString(),
      request: { id: request.id, agent: request.agent, host: request.host, port: request.port, first_seen: request.firstSeen.toISOString(), last_seen: request.lastSeen.toISOString(), count: request.count },
    });
    this.#outstanding += 1;
    void this.#attempt(request.id, body, 0);
  }

  /** Stops retrying and aborts deliveries in flight. */
  close(): void {
    this.#closed = true;
    for (const retry of this.#retries) retry.cancel();
    this.#retries.clear();
    for (const controller of this.#inFlight) controller.abort();
  }

  async #attempt(id: string, body: string, attempt: number): Promise<void> {
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    let failure: string;
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signatureOf(this.options.secret, body), 'X-Sluice-Delivery': id },
        body,
        signal: controller.signal,
        redirect: 'manual',
      });
      await response.body?.cancel();
      if (response.ok) {
        this.#count('delivered');
        this.#outstanding -= 1;
        return;
      }
      failure = `HTTP ${response.status}`;
    } catch (error) {
      failure = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    } finally {
      clearTimeout(timer);
      this.#inFlight.delete(controller);
    }
    this.#count('failed');
    if (this.#closed || attempt >= this.options.retries) {
      this.#outstanding -= 1;
      if (!this.#closed) this.#count('gave_up');
      this.options.log?.warn({ request: id, attempts: attempt + 1, failure }, 'approval webhook not delivered; giving up');
      return;
    }
    const delayMs = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
    this.options.log?.info({ request: id, attempt: attempt + 1, failure, retry_in_ms: delayMs }, 'approval webhook failed; will retry');
    const retry = (this.options.schedule ?? realTimer)(() => {
      this.#retries.delete(retry);
      void this.#attempt(id, body, attempt + 1);
    }, delayMs);
    this.#retries.add(retry);
  }

  #count(outcome: 'delivered' | 'failed' | 'gave_up' | 'dropped'): void {
    this.options.metrics?.webhookDeliveries.inc({ outcome });
  }
}

/**
 * The HMAC key from approvals.webhook_secret_file (relative to the config file) or
 * webhook_secret_env, one line, surrounding whitespace trimmed. An empty or unreadable secret
 * stops the start: an unsigned announcement would let anyone forge requests to approvers.
 */
export async function loadWebhookSecret(
  approvals: Pick<ApprovalsConfig, 'webhook_secret_file' | 'webhook_secret_env'>,
  sources: { readonly baseDir: string; readonly env: Readonly<Record<string, string | undefined>> },
): Promise<string> {
  let secret: string | undefined;
  let field: string;
  if (approvals.webhook_secret_file !== undefined) {
    field = 'approvals.webhook_secret_file';
    const path = isAbsolute(approvals.webhook_secret_file) ? approvals.webhook_secret_file : resolve(sources.baseDir, approvals.webhook_secret_file);
    try {
      secret = (await readFile(path, 'utf8')).trim();
    } catch (error) {
      throw new OperatorError('CONFIG_INVALID', `${field}: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  } else {
    field = 'approvals.webhook_secret_env';
    secret = approvals.webhook_secret_env === undefined ? undefined : sources.env[approvals.webhook_secret_env]?.trim();
  }
  if (secret === undefined || secret === '') throw new OperatorError('CONFIG_INVALID', `${field}: the webhook secret is missing or empty`);
  return secret;
}
