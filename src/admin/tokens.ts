// Admin API tokens: only their SHA-256 is kept, in the state directory (written by `sluice token`
// or the API) and optionally in the config; the file is re-read when it changes, no restart needed.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../state-file.js';
import { isRole, type Role } from './roles.js';

export const TOKEN_FILE = 'admin-tokens.json';
const FORMAT_VERSION = 1;
export const TOKEN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export interface TokenEntry {
  readonly name: string;
  readonly role: Role;
  readonly sha256: string;
  /** ISO time; null for tokens from the config */
  readonly created: string | null;
  readonly source: 'state' | 'config';
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** 256 random bits, URL-safe, with a prefix that secret scanners can recognise. */
export function newToken(): string {
  return `sluice_${randomBytes(32).toString('base64url')}`;
}

export class TokenFileError extends Error {
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`${file}: ${why}`);
    this.name = 'TokenFileError';
  }
}

function parse(file: string, text: string): TokenEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new TokenFileError(file, `not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const root = data as { version?: unknown; tokens?: unknown };
  if (root === null || typeof root !== 'object' || root.version !== FORMAT_VERSION || !Array.isArray(root.tokens)) {
    throw new TokenFileError(file, `expected {"version": ${FORMAT_VERSION}, "tokens": [...]}`);
  }
  return root.tokens.map((raw: unknown, index) => {
    const entry = raw as Record<string, unknown>;
    const { name, role, sha256, created } = entry ?? {};
    if (typeof name !== 'string' || !TOKEN_NAME.test(name)) throw new TokenFileError(file, `tokens[${index}].name is not a token name`);
    if (!isRole(role)) throw new TokenFileError(file, `tokens[${index}].role must be viewer, approver or admin`);
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw new TokenFileError(file, `tokens[${index}].sha256 is not a SHA-256 hex digest`);
    if (typeof created !== 'string') throw new TokenFileError(file, `tokens[${index}].created is not an ISO time`);
    return { name, role, sha256, created, source: 'state' as const };
  });
}

/** Reads the state file's tokens; none when it does not exist yet. */
export async function readTokenFile(file: string): Promise<TokenEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parse(file, text);
}

export async function writeTokenFile(file: string, tokens: readonly TokenEntry[]): Promise<void> {
  const stored = tokens.filter((token) => token.source === 'state').map(({ name, role, sha256, created }) => ({ name, role, sha256, created }));
  await writeFileAtomic(file, `${JSON.stringify({ version: FORMAT_VERSION, tokens: stored }, null, 2)}\n`);
}

/** Adds a token named `name` to the state file and returns its plaintext, which is never stored. */
export async function createToken(file: string, name: string, role: Role, now: Date): Promise<string> {
  const tokens = await readTokenFile(file);
  if (tokens.some((token) => token.name === name)) throw new TokenFileError(file, `a token named "${name}" exists already; revoke it first`);
  const token = newToken();
  await writeTokenFile(file, [...tokens, { name, role, sha256: hashToken(token), created: now.toISOString(), source: 'state' }]);
  return token;
}

/** Removes the named token from the state file; false when there was none. */
export async function revokeToken(file: string, name: string): Promise<boolean> {
  const tokens = await readTokenFile(file);
  const kept = tokens.filter((token) => token.name !== name);
  if (kept.length === tokens.length) return false;
  await writeTokenFile(file, kept);
  return true;
}

export function tokenFile(stateDir: string): string {
  return join(stateDir, TOKEN_FILE);
}

export interface ConfigToken {
  readonly name: string;
  readonly role: Role;
  readonly token_sha256: string;
}

/**
 * The tokens in force, as the running process sees them: the config's plus the state file's,
 * re-read whenever the file's identity, size or mtime changes (each change reported). An unreadable file keeps the
 * last good set (and reports why once), so a torn edit cannot lock every operator out.
 */
export class TokenRegistry {
  #byHash = new Map<string, TokenEntry>();
  #stamp = '';
  #stateTokens: TokenEntry[] = [];
  readonly #configTokens: TokenEntry[];

  constructor(
    readonly file: string,
    configTokens: readonly ConfigToken[],
    private readonly onChange: (change: { readonly tokens: readonly TokenEntry[] } | { readonly error: Error }) => void,
  ) {
    this.#configTokens = configTokens.map((token) => ({ name: token.name, role: token.role, sha256: token.token_sha256, created: null, source: 'config' as const }));
    this.#index();
  }

  /** The token presented, or undefined when it is not one of ours. */
  async lookup(presented: string): Promise<TokenEntry | undefined> {
    await this.refresh();
    return this.#byHash.get(hashToken(presented));
  }

  async list(): Promise<readonly TokenEntry[]> {
    await this.refresh();
    return [...this.#configTokens, ...this.#stateTokens];
  }

  async refresh(): Promise<void> {
    let stamp: string;
    try {
      const info = await stat(this.file);
      stamp = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      stamp = 'absent';
    }
    if (stamp === this.#stamp) return;
    // The first read (at start) is the baseline; what changes after it is reported.
    const first = this.#stamp === '';
    try {
      this.#stateTokens = await readTokenFile(this.file);
      this.#stamp = stamp;
      this.#index();
      if (!first) this.onChange({ tokens: this.#stateTokens });
    } catch (error) {
      this.#stamp = stamp;
      this.onChange({ error: error instanceof Error ? error : new Error(String(error)) });
    }
  }

  #index(): void {
    this.#byHash = new Map([...this.#configTokens, ...this.#stateTokens].map((token) => [token.sha256, token]));
  }
}
