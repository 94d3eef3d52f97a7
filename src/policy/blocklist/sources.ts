// blocklists/sources.yaml: which feeds to fetch, in which format, how often and within which
// limits. The file shape is validated here (file:line errors) and compiled into SourceSettings.
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { durationSchema } from '../../config/duration.js';
import { loadYamlFile, loadYamlText } from '../../config/yaml.js';
import { BLOCKLIST_FORMATS, type BlocklistFormat } from './formats.js';

/** The name is a metric label and a cache file name, so it is kept short and plain. */
const sourceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'source names are 1-40 characters of a-z 0-9 _ - (used in file names and metric labels)')
  .refine((name) => name !== 'local', 'the name "local" is reserved for local.txt');

const limits = {
  interval: durationSchema.optional(),
  timeout: durationSchema.optional(),
  max_bytes: z.number().int().min(1024).max(2 ** 31).optional(),
  max_entries: z.number().int().min(1).max(20_000_000).optional(),
  /** refuse a download that lists fewer than (1 - max_shrink) times the entries of the last good one */
  max_shrink: z.number().min(0).max(1).optional(),
};

const sourceSchema = z.strictObject({
  name: sourceName,
  url: z.string().regex(/^https?:\/\/[^\s/?#]+/i, 'expected an http:// or https:// URL'),
  format: z.enum(BLOCKLIST_FORMATS),
  enabled: z.boolean().default(true),
  ...limits,
});

export const sourcesFileSchema = z
  .strictObject({
    defaults: z
      .strictObject({
        interval: durationSchema.prefault('6h'),
        timeout: durationSchema.prefault('2m'),
        max_bytes: z.number().int().min(1024).max(2 ** 31).default(256 * 1024 * 1024),
        max_entries: z.number().int().min(1).max(20_000_000).default(5_000_000),
        max_shrink: z.number().min(0).max(1).default(0.5),
        /** each wait is the interval times a random factor in [1 - jitter, 1 + jitter] */
        jitter: z.number().min(0).max(0.5).default(0.1),
      })
      .prefault({}),
    /** Fetch feeds through this HTTP proxy (the appliance's own upstream proxy, if it has one). */
    proxy: z.string().regex(/^https?:\/\/[^\s/?#]+\/?$/i, 'expected a proxy URL such as http://proxy.internal:3128').optional(),
    /** Operators' own entries, one per line (names, *.names or addresses); relative to this file. */
    local: z.string().min(1).default('local.txt'),
    /** Allow-exceptions: names (and their subdomains) or addresses never blocked by a feed. */
    allow: z.string().min(1).default('allow.txt'),
    sources: z.array(sourceSchema).default([]),
  })
  .superRefine((file, context) => {
    const seen = new Set<string>();
    file.sources.forEach((source, index) => {
      if (seen.has(source.name)) context.addIssue({ code: 'custom', path: ['sources', index, 'name'], message: `duplicate source name "${source.name}"` });
      seen.add(source.name);
    });
  });

export interface SourceSettings {
  readonly name: string;
  readonly url: string;
  readonly format: BlocklistFormat;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly maxEntries: number;
  readonly maxShrink: number;
  readonly jitter: number;
}

export interface BlocklistConfig {
  readonly file: string;
  /** enabled sources only, in file order (the first source listing a name is the one reported) */
  readonly sources: readonly SourceSettings[];
  readonly proxy: string | null;
  readonly localFile: string;
  readonly allowFile: string;
}

function compile(file: string, value: z.output<typeof sourcesFileSchema>): BlocklistConfig {
  const base = dirname(resolve(file));
  const within = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const { defaults } = value;
  return {
    file: resolve(file),
    sources: value.sources
      .filter((source) => source.enabled)
      .map((source) => ({
        name: source.name,
        url: source.url,
        format: source.format,
        intervalMs: source.interval ?? defaults.interval,
        timeoutMs: source.timeout ?? defaults.timeout,
        maxBytes: source.max_bytes ?? defaults.max_bytes,
        maxEntries: source.max_entries ?? defaults.max_entries,
        maxShrink: source.max_shrink ?? defaults.max_shrink,
        jitter: defaults.jitter,
      })),
    proxy: value.proxy ?? null,
    localFile: within(value.local),
    allowFile: within(value.allow),
  };
}

/** Reads and validates sources.yaml; throws SourceError with file:line:column for every problem. */
export async function loadBlocklistConfig(file: string): Promise<BlocklistConfig> {
  const { value } = await loadYamlFile(file, sourcesFileSchema);
  return compile(file, value);
}

export function parseBlocklistConfig(file: string, text: string): BlocklistConfig {
  return compile(file, loadYamlText(file, text, sourcesFileSchema).value);
}
