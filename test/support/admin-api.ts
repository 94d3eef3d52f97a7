// Talks to a test Sluice's admin API the way an operator's script would: tokens made by the real
// `sluice token` module, JSON calls with a Bearer header.
import assert from 'node:assert/strict';
import { tokenCommand } from '../../src/cli/token.js';
import { runCommand } from './cli.js';
import type { RunningSluice } from './sluice.js';

/** A new admin API token of `role`, made as `sluice token create` makes it. */
export async function makeAdminToken(sluice: Pick<RunningSluice, 'configFile'>, name: string, role: 'viewer' | 'approver' | 'admin'): Promise<string> {
  const result = await runCommand(tokenCommand, ['create', '--config', sluice.configFile, '--name', name, '--role', role]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trimEnd().split('\n').at(-1) ?? '';
}

export interface ApiReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Headers;
}

/** One call; `body` is sent as JSON when given (a string is sent as is). */
export async function adminApi(sluice: Pick<RunningSluice, 'adminUrl'>, method: string, path: string, token: string | undefined, body?: unknown): Promise<ApiReply> {
  const response = await fetch(`${sluice.adminUrl}${path}`, {
    method,
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown>, headers: response.headers };
}
