// BlocklistSet by table: exact and parent-domain matches, wildcards, allow-exception specificity,
// addresses in any spelling, and fail-closed handling of non-addresses.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { destinationOf } from '../src/destination.js';
import { compileText } from '../src/policy/blocklist/compile.js';
import { BlocklistSet } from '../src/policy/blocklist/set.js';

const oisd = compileText('evil.example\n*.wild.example\nads.tracker.example\ncom.example\n', 'wildcard');
const urlhaus = compileText('127.0.0.1 evil.example\n127.0.0.1 drop.malware.example\n127.0.0.1 198.51.100.23\n127.0.0.1 2001:db8::bad\n', 'hosts');
const allow = compileText('good.evil.example\nmalware.example\n203.0.113.9\n', 'domains');
const local = compileText('203.0.113.9\nlocal-only.example\n', 'domains');
const set = new BlocklistSet(
  [
    { name: 'oisd-big', list: oisd },
    { name: 'urlhaus', list: urlhaus },
    { name: 'local', list: local },
  ],
  allow,
);

function hostOf(name: string): string {
  return destinationOf(name, 443).host;
}

describe('BlocklistSet.match', () => {
  const cases: Array<[string, { source: string; entry: string } | null]> = [
    ['evil.example', { source: 'oisd-big', entry: 'evil.example' }],
    ['a.b.evil.example', { source: 'oisd-big', entry: 'evil.example' }],
    ['EVIL.example.', { source: 'oisd-big', entry: 'evil.example' }],
    ['x.wild.example', { source: 'oisd-big', entry: 'wild.example' }],
    ['wild.example', { source: 'oisd-big', entry: 'wild.example' }],
    ['notevil.example', null],
    ['evil.example.org', null],
    ['example', null],
    ['tracker.example', null],
    ['drop.malware.example', { source: 'urlhaus', entry: 'drop.malware.example' }],
    ['good.evil.example', null],
    ['deep.good.evil.example', null],
    ['local-only.example', { source: 'local', entry: 'local-only.example' }],
    ['198.51.100.23', { source: 'urlhaus', entry: '198.51.100.23' }],
    ['3325256727', { source: 'urlhaus', entry: '198.51.100.23' }],
    ['203.0.113.9', null],
  ];
  for (const [name, expected] of cases) {
    test(`${expected === null ? 'passes' : 'blocks'} ${name}`, () => {
      assert.deepEqual(set.match(hostOf(name)), expected);
    });
  }

  test('names the first configured source when two list the same name', () => {
    assert.equal(set.match('evil.example')?.source, 'oisd-big');
  });

  test('lets a more specific listing beat a broader allow-exception', () => {
    assert.deepEqual(set.match('x.drop.malware.example'), { source: 'urlhaus', entry: 'drop.malware.example' });
    assert.equal(set.exceptionFor('x.drop.malware.example'), 'malware.example');
  });

  test('reports the allow-exception that lets a listed host through', () => {
    assert.equal(set.exceptionFor('deep.good.evil.example'), 'good.evil.example');
  });

  test('matches an empty set to nothing', () => {
    assert.equal(BlocklistSet.empty().match('evil.example'), null);
  });
});

describe('BlocklistSet.matchAddress', () => {
  test('blocks a listed address reached through an innocent name', () => {
    assert.deepEqual(set.matchAddress('198.51.100.23'), { source: 'urlhaus', entry: '198.51.100.23' });
  });

  test('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    assert.deepEqual(set.matchAddress('::ffff:198.51.100.23'), { source: 'urlhaus', entry: '198.51.100.23' });
  });

  test('matches IPv6 whatever its spelling', () => {
    assert.deepEqual(set.matchAddress('2001:0db8:0:0:0:0:0:0bad'), { source: 'urlhaus', entry: '2001:db8::bad' });
  });

  test('passes unlisted and allow-excepted addresses', () => {
    assert.equal(set.matchAddress('198.51.100.24'), null);
    assert.equal(set.matchAddress('203.0.113.9'), null);
  });

  test('fails closed on something that is not an address', () => {
    assert.notEqual(set.matchAddress('not-an-address'), null);
  });
});
