// Where the blocklist feed samples live, resolved from dist/test/support back to the sources.
import { fileURLToPath } from 'node:url';

export const BLOCKLIST_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/blocklists/', import.meta.url));
