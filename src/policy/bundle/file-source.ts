// A bundle and its signature from local files, re-read when the directory changes (editors and
// deploy tools replace files by rename, which a watch on the file itself would miss).
import { watch as watchDirectory, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { SignatureInput } from './verify-signature.js';
import type { BundleSource, FetchResult } from './source.js';
import { OperatorError } from '../../errors.js';

export interface FileSourceSettings {
  readonly path: string;
  /** detached base64 signature file; default PATH.sig */
  readonly signaturePath?: string;
  /** a sigstore or cosign bundle file instead of a detached signature */
  readonly sigstoreBundlePath?: string;
  readonly maxBytes: number;
}

const DEBOUNCE_MS = 100;

export class FileBundleSource implements BundleSource {
  readonly description: string;

  constructor(private readonly settings: FileSourceSettings) {
    this.description = `file ${settings.path}`;
  }

  async fetch(): Promise<FetchResult> {
    const { path, maxBytes } = this.settings;
    const signaturePath = this.settings.sigstoreBundlePath ?? this.settings.signaturePath ?? `${path}.sig`;
    const [artifact, signatureBytes] = await Promise.all([readCapped(path, maxBytes), readCapped(signaturePath, maxBytes)]);
    const signature: SignatureInput = {
      kind: this.settings.sigstoreBundlePath === undefined ? 'detached' : 'bundle',
      bytes: signatureBytes,
      source: signaturePath,
    };
    return { kind: 'fetched', candidate: { artifact, evidence: { kind: 'blob', signature }, origin: path } };
  }

  watch(onChange: () => void): () => void {
    const names = new Set([basename(this.settings.path), basename(this.settings.sigstoreBundlePath ?? this.settings.signaturePath ?? `${this.settings.path}.sig`)]);
    let timer: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    try {
      watcher = watchDirectory(dirname(this.settings.path), (_event, name) => {
        if (name !== null && !names.has(name.toString())) return;
        // Artifact and signature are usually written one after the other: wait for both.
        clearTimeout(timer);
        timer = setTimeout(onChange, DEBOUNCE_MS);
      });
      watcher.on('error', () => undefined);
    } catch {
      // No watch support (or the directory is missing): the poll loop still picks changes up.
    }
    return () => {
      clearTimeout(timer);
      watcher?.close();
    };
  }
}

async function readCapped(path: string, maxBytes: number): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new OperatorError('BUNDLE_FETCH_FAILED', `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (bytes.length > maxBytes) throw new OperatorError('BUNDLE_FETCH_FAILED', `${path} is ${bytes.length} bytes, over the ${maxBytes}-byte cap`);
  return bytes;
}
