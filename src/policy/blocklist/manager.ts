// Keeps the active BlocklistSet current: loads every source's last-known-good copy at start,
// refreshes each feed on its own jittered timer, and swaps in a new set only when a download
// is accepted. A failing or shrinking feed never unblocks what it listed before.
import { mkdir, rename, rm } from 'node:fs/promises';
import type { Dispatcher } from 'undici';
import type { ParentProxies } from '../../connect/index.js';
import { isOperatorError } from '../../errors.js';
import type { Logger } from '../../obs/log.js';
import type { Metrics } from '../../obs/metrics.js';
import { listPath, readRecord, temporaryPath, writeRecord, type CacheRecord } from './cache.js';
import { compileText, type CompiledList } from './compile.js';
import { compileFile } from './compile-file.js';
import { download, feedDispatcher } from './download.js';
import { readLocalList } from './local-lists.js';
import { BlocklistSet } from './set.js';
import type { BlocklistConfig, SourceSettings } from './sources.js';

export type RefreshOutcome = 'updated' | 'not_modified' | 'error' | 'too_large' | 'shrink_refused';

export interface RefreshReport {
  readonly source: string;
  readonly outcome: RefreshOutcome;
  readonly entries: number;
  readonly detail?: string;
}

export interface SourceStatus {
  readonly source: string;
  readonly url: string;
  readonly entries: number;
  readonly fetchedAt: number | null;
  readonly checkedAt: number | null;
  readonly lastOutcome: RefreshOutcome | null;
  readonly lastDetail: string | null;
}

/** The time and timers the refresh schedule runs on; tests pass one they move by hand. */
export interface RefreshClock {
  now(): number;
  /** runs `callback` once, `ms` from now, without holding the process open; returns its cancel */
  after(ms: number, callback: () => void): () => void;
}

const SYSTEM_CLOCK: RefreshClock = {
  now: () => Date.now(),
  after: (ms, callback) => {
    const timer = setTimeout(callback, ms).unref();
    return () => clearTimeout(timer);
  },
};

export interface BlocklistManagerOptions {
  readonly config: BlocklistConfig;
  /** where each source's last-known-good copy lives, e.g. STATE_DIR/blocklists */
  readonly cacheDir: string;
  readonly metrics?: Metrics;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** called after every swap of the active set */
  readonly onSwap?: (set: BlocklistSet) => void;
  readonly random?: () => number;
  readonly clock?: RefreshClock;
  /** override the HTTP client (tests use a short-lived Agent) */
  readonly dispatcher?: Dispatcher;
  /** connect.upstream_proxy: feeds go through these parents unless sources.yaml names its own proxy */
  readonly parents?: ParentProxies | undefined;
}

interface SourceState {
  readonly settings: SourceSettings;
  list: CompiledList | null;
  record: CacheRecord | null;
  inflight: Promise<RefreshReport> | null;
  cancelTimer: (() => void) | null;
  lastOutcome: RefreshOutcome | null;
  lastDetail: string | null;
}

const RETRY_AFTER_FAILURE_MS = 15 * 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const EMPTY: CompiledList = compileText('', 'domains');

export class BlocklistManager {
  private readonly states: SourceState[];
  private local: CompiledList = EMPTY;
  private allow: CompiledList = EMPTY;
  private active = BlocklistSet.empty();
  private readonly dispatcher: Dispatcher;
  private readonly clock: RefreshClock;
  private stopped = false;

  constructor(private readonly options: BlocklistManagerOptions) {
    this.states = options.config.sources.map((settings) => ({ settings, list: null, record: null, inflight: null, cancelTimer: null, lastOutcome: null, lastDetail: null }));
    this.dispatcher = options.dispatcher ?? feedDispatcher(options.config.proxy, options.parents);
    this.clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** The active set; replaced as a whole, so a caller holding one sees a consistent snapshot. */
  get current(): BlocklistSet {
    return this.active;
  }

  /** Loads local files and every cached copy, publishes the set, and starts the timers. */
  async start(): Promise<BlocklistSet> {
    await this.load();
    for (const state of this.states) {
      const { record, list, settings } = state;
      const current = record !== null && list !== null && record.url === settings.url && record.format === settings.format;
      const due = current ? record.checkedAt + settings.intervalMs - this.clock.now() : 0;
      this.schedule(state, Math.max(0, due));
    }
    return this.active;
  }

  /** Loads without starting timers: what the CLI and `start` do first. */
  async load(): Promise<BlocklistSet> {
    await mkdir(this.options.cacheDir, { recursive: true });
    await this.reloadLocal();
    await Promise.all(this.states.map((state) => this.loadCached(state)));
    this.publish();
    return this.active;
  }

  /** Re-reads local.txt and allow.txt; an unreadable file keeps its previous contents. */
  async reloadLocal(): Promise<void> {
    const [local, allow] = await Promise.all([readLocalList(this.options.config.localFile), readLocalList(this.options.config.allowFile)]);
    for (const problem of [...local.problems, ...allow.problems]) this.options.logger?.warn({ problem }, 'blocklist local file problem');
    if (local.list !== null) this.local = local.list;
    if (allow.list !== null) this.allow = allow.list;
    this.options.metrics?.blocklistEntries.set({ source: 'local' }, this.local.entries);
  }

  /** Refreshes every source now (and re-reads the local files); resolves once all are done. */
  async refreshAll(options: { acceptShrink?: boolean } = {}): Promise<RefreshReport[]> {
    await this.reloadLocal();
    const reports = await Promise.all(this.states.map((state) => this.refreshState(state, options.acceptShrink === true)));
    this.publish();
    return reports;
  }

  status(): SourceStatus[] {
    return this.states.map((state) => ({
      source: state.settings.name,
      url: state.settings.url,
      entries: state.list?.entries ?? 0,
      fetchedAt: state.record?.fetchedAt ?? null,
      checkedAt: state.record?.checkedAt ?? null,
      lastOutcome: state.lastOutcome,
      lastDetail: state.lastDetail,
    }));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const state of this.states) state.cancelTimer?.();
    await Promise.allSettled(this.states.map((state) => state.inflight));
    if (this.options.dispatcher === undefined) await this.dispatcher.close();
  }

  private async loadCached(state: SourceState): Promise<void> {
    const { name } = state.settings;
    const record = await readRecord(this.options.cacheDir, name);
    if (record === null) return;
    // Kept even if the copy fails to load, so the shrink check still knows the last good size.
    state.record = record;
    try {
      // No entry cap here: a cap lowered since this copy was accepted must not drop its entries.
      state.list = await compileFile(listPath(this.options.cacheDir, name), record.format, Number.MAX_SAFE_INTEGER);
      this.options.metrics?.blocklistLastSuccess.set({ source: name }, Math.floor(record.checkedAt / 1000));
    } catch (error) {
      this.options.logger?.error({ source: name, err: error }, 'blocklist cached copy unreadable; fetching a fresh one');
    }
  }

  private schedule(state: SourceState, delayMs: number): void {
    if (this.stopped) return;
    state.cancelTimer?.();
    state.cancelTimer = this.clock.after(Math.min(delayMs, MAX_TIMER_MS), () => {
      state.cancelTimer = null;
      void this.refreshState(state, false).then((report) => {
        this.publish();
        const failed = report.outcome !== 'updated' && report.outcome !== 'not_modified';
        this.schedule(state, this.jittered(state.settings, failed ? Math.min(state.settings.intervalMs, RETRY_AFTER_FAILURE_MS) : state.settings.intervalMs));
      });
    });
  }

  private jittered(settings: SourceSettings, base: number): number {
    const random = this.options.random ?? Math.random;
    return Math.round(base * (1 + settings.jitter * (2 * random() - 1)));
  }

  /** One refresh at a time per source: a second caller shares the first one's result. */
  private refreshState(state: SourceState, acceptShrink: boolean): Promise<RefreshReport> {
    state.inflight ??= this.refreshSource(state, acceptShrink).finally(() => {
      state.inflight = null;
    });
    return state.inflight;
  }

  private async refreshSource(state: SourceState, acceptShrink: boolean): Promise<RefreshReport> {
    const { settings } = state;
    const { cacheDir } = this.options;
    const previous = state.list?.entries ?? state.record?.entries ?? 0;
    const sameFeed = state.record !== null && state.record.url === settings.url && state.record.format === settings.format && state.list !== null;
    const target = temporaryPath(listPath(cacheDir, settings.name));
    const report = (outcome: RefreshOutcome, detail?: string): RefreshReport => {
      state.lastOutcome = outcome;
      state.lastDetail = detail ?? null;
      this.options.metrics?.blocklistRefreshes.inc({ source: settings.name, outcome });
      if (outcome === 'updated' || outcome === 'not_modified') this.options.metrics?.blocklistLastSuccess.set({ source: settings.name }, Math.floor(this.clock.now() / 1000));
      const entries = state.list?.entries ?? 0;
      return detail === undefined ? { source: settings.name, outcome, entries } : { source: settings.name, outcome, entries, detail };
    };
    try {
      const result = await download({
        url: settings.url,
        validators: sameFeed && state.record !== null ? { etag: state.record.etag, lastModified: state.record.lastModified } : null,
        timeoutMs: settings.timeoutMs,
        maxBytes: settings.maxBytes,
        target,
        dispatcher: this.dispatcher,
      });
      if (result.status === 'not_modified') {
        if (state.record !== null) {
          state.record = { ...state.record, checkedAt: this.clock.now() };
          await writeRecord(cacheDir, settings.name, state.record);
        }
        return report('not_modified');
      }
      const list = await compileFile(target, settings.format, settings.maxEntries);
      if (!acceptShrink && previous > 0 && list.entries < previous * (1 - settings.maxShrink)) {
        const detail = `download lists ${list.entries} entries, last good copy ${previous}: shrank more than ${Math.round(settings.maxShrink * 100)}%, kept the old copy`;
        this.options.logger?.error({ source: settings.name, previous, offered: list.entries, alert: 'blocklist_shrink_refused' }, `blocklist ${settings.name}: ${detail}`);
        return report('shrink_refused', detail);
      }
      await rename(target, listPath(cacheDir, settings.name));
      const now = this.clock.now();
      state.record = { url: settings.url, format: settings.format, ...result.validators, fetchedAt: now, checkedAt: now, entries: list.entries, bytes: result.bytes };
      state.list = list;
      await writeRecord(cacheDir, settings.name, state.record);
      if (list.malformed > 0) this.options.logger?.warn({ source: settings.name, malformed: list.malformed, examples: list.malformedExamples }, 'blocklist feed has malformed lines');
      this.options.logger?.info({ source: settings.name, entries: list.entries, previous }, 'blocklist updated');
      return report('updated');
    } catch (error) {
      const tooLarge = isOperatorError(error, 'BLOCKLIST_ENTRY_CAP') || isOperatorError(error, 'BLOCKLIST_TOO_LARGE');
      const detail = error instanceof Error ? error.message : String(error);
      this.options.logger?.warn({ source: settings.name, err: error }, 'blocklist refresh failed; keeping the last good copy');
      return report(tooLarge ? 'too_large' : 'error', detail);
    } finally {
      await rm(target, { force: true });
    }
  }

  private publish(): void {
    const sources = [{ name: 'local', list: this.local }];
    for (const state of this.states) {
      if (state.list === null) continue;
      sources.push({ name: state.settings.name, list: state.list });
      this.options.metrics?.blocklistEntries.set({ source: state.settings.name }, state.list.entries);
    }
    this.active = new BlocklistSet(sources, this.allow);
    this.options.onSwap?.(this.active);
  }
}
