// The blocklist module's public face: what the composition root and decide() need, nothing more.
export { BlocklistSet, canonicalAddress, type BlocklistMatch, type BlocklistSource } from './set.js';
export { BlocklistManager, type BlocklistManagerOptions, type RefreshOutcome, type RefreshReport, type SourceStatus } from './manager.js';
export { loadBlocklistConfig, parseBlocklistConfig, type BlocklistConfig, type SourceSettings } from './sources.js';
export { BLOCKLIST_FORMATS, type BlocklistFormat } from './formats.js';
