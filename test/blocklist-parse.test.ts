// Feed parsing: each format's real-format sample yields the right names, addresses and malformed
// counts, and the fast entry normaliser agrees with normaliseHost.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { domainToASCII } from 'node:url';
import { describe, test } from 'node:test';
import { normaliseHost } from '../src/destination.js';
import { compileText, type CompiledList } from '../src/policy/blocklist/compile.js';
import type { BlocklistFormat } from '../src/policy/blocklist/formats.js';
import { normaliseEntry } from '../src/policy/blocklist/normalise.js';
import { BLOCKLIST_FIXTURES } from './support/blocklist-fixtures.js';

async function fixture(name: string, format: BlocklistFormat): Promise<CompiledList> {
  return compileText(await readFile(join(BLOCKLIST_FIXTURES, name), 'utf8'), format);
}

function names(list: CompiledList): string[] {
  return [...list.names.names()].sort();
}

describe('blocklist feed formats', () => {
  test('reads OISD domainswild2: header skipped, names lower-cased and punycoded, bad line counted', async () => {
    const list = await fixture('oisd-domainswild2.txt', 'wildcard');
    assert.deepEqual(names(list), [
      '0-0-0-ads.example',
      'ads.tracker.example',
      'beacon.metrics.example',
      'cdn.evil.example',
      'evil.example',
      'phish-login.test',
      'telemetry.bad-vendor.example',
      'xn--bcher-kva.example',
    ]);
    assert.equal(list.malformed, 1);
    assert.equal(list.malformedExamples[0]?.line, 19);
    assert.equal(list.malformedExamples[0]?.text, 'bad..label.example');
    assert.equal(list.entries, 8);
  });

  test('reads the URLhaus hostfile with CRLF endings and sends IP literals to the address set', async () => {
    const list = await fixture('urlhaus-hostfile.txt', 'hosts');
    assert.deepEqual(names(list), ['drop.malware.example', 'mozi-c2.test', 'payload.compromised-site.example']);
    assert.deepEqual([...list.ips], ['198.51.100.23']);
    assert.equal(list.malformed, 1, 'an address with no name is malformed');
  });

  test('takes the host of the url column of a URLhaus CSV dump, IPv6 and userinfo included', async () => {
    const list = await fixture('urlhaus-csv.txt', 'urlhaus-csv');
    assert.deepEqual(names(list), ['loader.malware.example', 'stage2.dropper.test']);
    assert.deepEqual([...list.ips].sort(), ['198.51.100.7', '2001:db8::bad']);
    assert.equal(list.malformed, 1);
    assert.match(list.malformedExamples[0]?.reason ?? '', /not an absolute URL/);
  });

  test('normalises IPv4 in any spelling from a URL list, as a Destination would', async () => {
    const list = await fixture('urlhaus-text-online.txt', 'urls');
    assert.deepEqual(names(list), ['gate.botnet.test', 'loader.malware.example']);
    assert.deepEqual([...list.ips].sort(), ['127.0.0.2', '203.0.113.45']);
    assert.equal(list.malformed, 1);
  });

  test('keeps whole-domain adblock rules and counts path and cosmetic rules as malformed', async () => {
    const list = await fixture('adblock.txt', 'adblock');
    assert.deepEqual(names(list), ['cryptominer.test', 'phishing.adblock.example', 'tracker.adblock.example']);
    assert.equal(list.malformed, 2);
  });

  test('reads hosts files: self-mappings skipped, several names per line, inline comments dropped', async () => {
    const list = await fixture('hosts.txt', 'hosts');
    assert.deepEqual(names(list), ['ad.hosts.example', 'banner.hosts.example', 'spyware.test', 'track.hosts.example']);
    assert.equal(list.malformed, 1);
    assert.match(list.malformedExamples[0]?.reason ?? '', /must start with an address/);
  });

  test('reads plain domains with *. and leading-dot wildcards and IDN names', async () => {
    const list = await fixture('domains.txt', 'domains');
    assert.deepEqual(names(list), ['dot-prefixed.example', 'scam-shop.example', 'wild.example', domainToASCII('münchen-phish.example')]);
    assert.equal(list.malformed, 1);
  });

  test('drops duplicates so entries counts distinct names', () => {
    const list = compileText('a.example\nA.example\na.example.\nb.example\n', 'domains');
    assert.equal(list.entries, 2);
  });
});

describe('entry normalisation', () => {
  test('agrees with normaliseHost on a large sample of ASCII names, valid and not', () => {
    const alphabet = 'abcxyzAZ09-_.';
    let seed = 42;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed % n;
    };
    const samples = ['xn--abc.example', 'XN--BCHER-KVA.example', '1.2.3', 'a.0x1f', 'a.08', 'host.', '.lead', 'a'.repeat(64) + '.x', `${'a.'.repeat(127)}a`];
    for (let n = 0; n < 20_000; n++) {
      let text = '';
      const length = 1 + random(24);
      for (let i = 0; i < length; i++) text += alphabet[random(alphabet.length)];
      samples.push(text);
    }
    for (const sample of samples) {
      let expected: { host: string; kind: string } | string;
      try {
        expected = normaliseHost(sample);
      } catch {
        expected = 'invalid';
      }
      const actual = normaliseEntry(sample);
      assert.deepEqual(typeof actual === 'string' ? 'invalid' : actual, expected, JSON.stringify(sample));
    }
  });
});
