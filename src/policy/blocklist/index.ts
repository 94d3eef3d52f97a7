// The blocklist module's public face: what the composition root and decide() need, nothing more.
// decide() takes a BlocklistSet as data; the manager that keeps it current lives in the root.
export { BlocklistSet, canonicalAddress, type BlocklistMatch, type BlocklistSource } from './set.js';
export { BlocklistManager, type BlocklistManagerOptions, type RefreshOutcome, type RefreshReport, type SourceStatus } from './manager.js';
export { loadBlocklistConfig, parseBlocklistConfig, type BlocklistConfig, type SourceSettings } from './sources.js';
export { BLOCKLIST_FORMATS, type BlocklistFormat } from './formats.js';
