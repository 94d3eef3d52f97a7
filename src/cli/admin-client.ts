// How admin commands reach the running Sluice: the config's listen.admin, a token from
// SLUICE_ADMIN_TOKEN or --token-file, and plain words when Sluice is down or the token is refused.
import { DURATION_HINT, parseDuration } from '../config/duration.js';
import { readFile } from 'node:fs/promises';
import { splitHostPort } from '../config/host-port.js';
import { loadConfig } from '../config/load.js';
import type { CliIo } from './command.js';
import { EXIT, failure } from './exit.js';
import { placementFrom } from './placement.js';

/** The options every admin command takes, for parseArgs. */
export const ADMIN_OPTIONS = {
  config: { type: 'string', short: 'c' },
  'token-file': { type: 'string' },
} as const;

export const ADMIN_OPTIONS_HELP = `  -c, --config FILE     the configuration whose listen.admin to call (default: $SLUICE_CONFIG)
      --token-file FILE a file holding the admin API token (default: $SLUICE_ADMIN_TOKEN)`;

/** Said to the operator as is; the command exits 1. */
export class AdminCallError extends Error {
  override name = 'AdminCallError';
}

export interface AdminTarget {
  readonly base: string;
  readonly token: string;
}

export interface AdminReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A wildcard listen address is reached on loopback of the same family. */
function reachable(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export async function adminTarget(values: { readonly config?: string | undefined; readonly 'token-file'?: string | undefined }, io: CliIo): Promise<AdminTarget> {
  const loaded = await loadConfig(values.config ?? io.env['SLUICE_CONFIG'] ?? null, placementFrom(io));
  const { host, port } = splitHostPort(loaded.config.listen.admin);
  let token = io.env['SLUICE_ADMIN_TOKEN'];
  if (values['token-file'] !== undefined) token = (await readFile(values['token-file'], 'utf8')).trim();
  if (token === undefined || token === '') throw new AdminCallError('no admin token: set SLUICE_ADMIN_TOKEN or pass --token-file (make one with `sluice token create`)');
  return { base: `http://${reachable(host)}:${port}`, token };
}

export async function adminCall(target: AdminTarget, method: string, path: string, body?: unknown): Promise<AdminReply> {
  let response: Response;
  try {
    response = await fetch(`${target.base}${path}`, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    if (cause === 'ECONNREFUSED') throw new AdminCallError(`Sluice is not running: nothing answers on ${target.base} (listen.admin)`);
    throw new AdminCallError(`cannot reach Sluice's admin API on ${target.base}: ${cause ?? (error instanceof Error ? error.message : String(error))}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AdminCallError(`${target.base} answered ${response.status} without JSON: is listen.admin a Sluice?`);
  }
  const reply = { status: response.status, body: (parsed ?? {}) as Record<string, unknown> };
  if (response.ok) return reply;
  const error = (reply.body['error'] ?? {}) as { code?: string; message?: string };
  if (response.status === 401) throw new AdminCallError(`the admin API refused the token (${error.code ?? 401}): ${error.message ?? ''}`);
  throw new AdminCallError(`${error.message ?? `status ${response.status}`} [${error.code ?? response.status}]`);
}

/** How an admin command fails: Sluice's own words for a refused call, else the usual failure line. */
export function adminFailure(io: CliIo, who: string, error: unknown): number {
  if (error instanceof AdminCallError) {
    io.err(`${who}: ${error.message}`);
    return EXIT.failed;
  }
  return failure(io, who, error);
}

/** A --for style duration in milliseconds, or a usage error naming the option. */
export function durationOption(option: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === null) throw new AdminCallError(`--${option} ${JSON.stringify(text)}: ${DURATION_HINT}`);
  return ms;
}
