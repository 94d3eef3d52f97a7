// What a suite of tests shares (origins, a CA, a DNS server, a Sluice, keys): started once
// before its tests and closed after them, newest first, whatever failed in between.
import { after, before } from 'node:test';

interface Closable {
  close(): Promise<unknown>;
}

/** Registers a resource to close after the suite: by its close(), or by `close` when it has none. */
export interface Keep {
  <R extends Closable>(resource: R): R;
  <R>(resource: R, close: (resource: R) => Promise<unknown>): R;
}

/**
 * In the current describe() (or file): before its tests, runs `start`, which opens what they need
 * and hands each thing to `keep`; after them, closes all of it, newest first. Returns a getter
 * for what `start` resolved to, for use inside tests.
 */
export function suiteFixture<T>(start: (keep: Keep) => Promise<T>): () => T {
  const closers: (() => Promise<unknown>)[] = [];
  let value: { readonly current: T } | undefined;
  const keep = (<R>(resource: R, close?: (resource: R) => Promise<unknown>): R => {
    closers.push(() => (close === undefined ? (resource as R & Closable).close() : close(resource)));
    return resource;
  }) as Keep;
  before(async () => {
    value = { current: await start(keep) };
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
  });
  return () => {
    if (value === undefined) throw new Error('the suite fixture is read before its before() hook ran');
    return value.current;
  };
}
