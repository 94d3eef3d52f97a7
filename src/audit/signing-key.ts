// The Ed25519 key that signs audit checkpoints: created 0600 in the state directory at first start,
// and rotated by staging a successor that the next start announces under the old key.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OperatorError } from '../errors.js';

export const SIGNING_KEY_FILE = 'audit-signing.key';
/** A successor staged by `sluice audit rotate-key`; the next start announces it and takes it into use. */
export const NEXT_SIGNING_KEY_FILE = 'audit-signing.key.next';

/** Ed25519 SubjectPublicKeyInfo DER is this 12-byte prefix followed by the 32-byte raw key (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const RAW_KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

export interface SigningKey {
  readonly privateKey: KeyObject;
  /** base64 of the 32 raw public key bytes: what `sluice audit pubkey` prints and checkpoints carry */
  readonly publicKey: string;
}

export function signBytes(key: SigningKey, message: Uint8Array): string {
  return sign(null, message, key.privateKey).toString('base64');
}

/** False for a bad signature, a malformed signature, or a key that is not 32 raw bytes in base64. */
export function verifyBytes(publicKey: string, message: Uint8Array, signature: string): boolean {
  const key = publicKeyObject(publicKey);
  if (key === null) return false;
  const bytes = Buffer.from(signature, 'base64');
  if (bytes.length !== 64 || bytes.toString('base64') !== signature) return false;
  return verify(null, message, key, bytes);
}

/** The canonical spelling of a raw Ed25519 public key in base64, or null when it is not one. */
export function parsePublicKey(text: string): string | null {
  const trimmed = text.trim();
  return RAW_KEY_BASE64.test(trimmed) && publicKeyObject(trimmed) !== null ? trimmed : null;
}

function publicKeyObject(publicKey: string): KeyObject | null {
  if (!RAW_KEY_BASE64.test(publicKey)) return null;
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKey, 'base64')]), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

function fromPrivate(privateKey: KeyObject): SigningKey {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: spki.subarray(SPKI_PREFIX.length).toString('base64') };
}

/** Reads a PKCS#8 PEM Ed25519 key, refusing one that others can read (it would let them forge). */
export async function readSigningKey(file: string): Promise<SigningKey> {
  const info = await stat(file);
  if ((info.mode & 0o077) !== 0) {
    throw new OperatorError('AUDIT_KEY_INVALID', `${file}: mode ${(info.mode & 0o777).toString(8)} lets other users read the signing key; chmod 600 it`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(file, 'utf8'));
  } catch (error) {
    throw new OperatorError('AUDIT_KEY_INVALID', `${file}: not a PEM private key: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new OperatorError('AUDIT_KEY_INVALID', `${file}: a ${privateKey.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519`);
  }
  return fromPrivate(privateKey);
}

/** Creates a fresh key at `file` (exclusively, 0600, durably); fails if the file exists. */
export async function createSigningKey(file: string): Promise<SigningKey> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await handle.sync();
  } finally {
    await handle.close();
  }
  return fromPrivate(privateKey);
}

export interface LoadedSigningKeys {
  readonly current: SigningKey;
  /** a staged successor: announce it in a checkpoint signed by `current`, then call `promote` */
  readonly next: SigningKey | null;
  /** makes the successor the current key (the old one is kept as audit-signing.key.<time>.old) */
  promote(now: Date): Promise<void>;
}

/** The key in `stateDir`, created on first use, and a staged successor if there is one. */
export async function loadSigningKeys(stateDir: string): Promise<LoadedSigningKeys> {
  const file = join(stateDir, SIGNING_KEY_FILE);
  const nextFile = join(stateDir, NEXT_SIGNING_KEY_FILE);
  const current = await readSigningKey(file).catch(async (error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return createSigningKey(file);
    throw error;
  });
  const next = await readSigningKey(nextFile).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  });
  return {
    current,
    next,
    promote: async (now) => {
      // The retired key stays on disk: deleting it is the operator's call once it is known unused.
      await rename(file, `${file}.${now.toISOString().replace(/[-:.]/g, '')}.old`);
      await rename(nextFile, file);
    },
  };
}
