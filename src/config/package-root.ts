// Where the installed package lives (package.json, rules/, blocklists/), known without loading
// the config machinery, so `sluice --version` stays cheap.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/config/package-root.js sits three levels below the package root. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
