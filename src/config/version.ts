// Sluice's version (`sluice --version`, OCSF metadata.product.version), read once from the package
// manifest with nothing else loaded: the command line's cheapest path.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './package-root.js';

function readVersion(): string {
  // Read once at CLI start, never on a request path.
  const manifest: unknown = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8'));
  const version = (manifest as { version?: unknown }).version;
  return typeof version === 'string' ? version : '0.0.0';
}

export const VERSION = readVersion();
