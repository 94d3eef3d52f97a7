// Proves the address guard: every IANA special-purpose range, embedded IPv4 forms, metadata
// endpoints and exotic literal spellings land in a forbidden class; allow_cidrs open exactly theirs.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import {
  ADDRESS_CLASSES,
  AddressGuard,
  classifyAddress,
  ConnectConfigError,
  METADATA_ADDRESSES,
  METADATA_HOST_NAMES,
  SPECIAL_RANGES_V4,
  SPECIAL_RANGES_V6,
  type AddressClass,
} from '../src/connect/index.js';
import { normaliseHost } from '../src/destination.js';

// [address, class]: first and last address of each range where it matters, plus one inside.
const V4_TABLE: readonly (readonly [string, AddressClass])[] = [
  ['0.0.0.0', 'unspecified'],
  ['0.255.255.255', 'unspecified'],
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['169.254.0.1', 'link_local'],
  ['169.254.255.255', 'link_local'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.0.0.8', 'special_purpose'],
  ['192.0.2.10', 'documentation'],
  ['192.88.99.1', 'special_purpose'],
  ['192.168.1.1', 'private'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.200', 'documentation'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // neighbours of the ranges stay public
  ['1.1.1.1', 'public'],
  ['8.8.8.8', 'public'],
  ['9.255.255.255', 'public'],
  ['11.0.0.0', 'public'],
  ['100.63.255.255', 'public'],
  ['100.128.0.0', 'public'],
  ['172.15.255.255', 'public'],
  ['172.32.0.0', 'public'],
  ['192.0.3.0', 'public'],
  ['198.17.255.255', 'public'],
  ['198.20.0.0', 'public'],
  ['223.255.255.255', 'public'],
];

const V6_TABLE: readonly (readonly [string, AddressClass])[] = [
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['100::1', 'discard'],
  ['64:ff9b:1::a00:1', 'special_purpose'],
  ['2001:1::1', 'special_purpose'],
  ['2001:2::5', 'benchmarking'],
  ['2001:4:112::1', 'special_purpose'],
  ['2001:1ff:ffff::1', 'special_purpose'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['3fff:fff:ffff::1', 'documentation'],
  ['fc00::1', 'unique_local'],
  ['fd12:3456::1', 'unique_local'],
  ['fe80::1', 'link_local'],
  ['fe80::1%eth0', 'link_local'],
  ['febf::1', 'link_local'],
  ['fec0::1', 'site_local'],
  ['ff02::1', 'multicast'],
  ['5f00::1', 'reserved'],
  ['4000::1', 'reserved'],
  ['::2:0:0:1', 'reserved'],
  ['2606:4700:4700::1111', 'public'],
  ['2001:4860:4860::8888', 'public'],
  ['2001:200::1', 'public'],
  ['3fff:1000::1', 'public'],
];

// IPv4 carried inside IPv6 is judged by the IPv4 address the packets end up at.
const EMBEDDED_TABLE: readonly (readonly [string, AddressClass])[] = [
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:169.254.169.254', 'metadata'],
  ['::ffff:10.1.2.3', 'private'],
  ['::ffff:8.8.8.8', 'public'],
  ['::7f00:1', 'loopback'],
  ['::a9fe:a9fe', 'metadata'],
  ['::0.0.0.2', 'unspecified'],
  ['64:ff9b::127.0.0.1', 'loopback'],
  ['64:ff9b::a9fe:a9fe', 'metadata'],
  ['64:ff9b::c0a8:101', 'private'],
  ['64:ff9b::808:808', 'public'],
  ['2002:7f00:1::', 'loopback'],
  ['2002:a9fe:a9fe::1', 'metadata'],
  ['2002:c0a8:101:1::1', 'private'],
  ['2002:808:808::1', 'public'],
  // RFC 4380 §4 example: server 65.54.227.120, client 192.0.2.45 stored inverted
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'documentation'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback'],
  ['2001:0:4136:e378:8000:63bf:5601:5601', 'metadata'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'public'],
  // a public client behind a Teredo server in private space is still refused
  ['2001:0:a00:1:8000:63bf:f7f7:f7f7', 'private'],
];

const METADATA_SPELLINGS = [
  '169.254.169.254',
  '169.254.169.253',
  '169.254.169.123',
  '169.254.170.2',
  '169.254.170.23',
  '169.254.0.23',
  '100.100.100.200',
  '168.63.129.16',
  '192.0.0.192',
  'fd00:ec2::254',
  'fd00:ec2::253',
  'fd00:ec2::123',
  'fd00:ec2::23',
  'fd00:ec2:0:0:0:0:0:254',
];

describe('classifyAddress', () => {
  for (const [address, expected] of [...V4_TABLE, ...V6_TABLE, ...EMBEDDED_TABLE]) {
    test(`classifies ${address} as ${expected}`, () => {
      assert.equal(classifyAddress(address), expected);
    });
  }

  for (const address of [...METADATA_SPELLINGS, ...METADATA_ADDRESSES]) {
    test(`classifies the metadata endpoint ${address} as metadata`, () => {
      assert.equal(classifyAddress(address), 'metadata');
    });
  }

  test('only ever answers a class from the closed list', () => {
    const all = [...V4_TABLE, ...V6_TABLE, ...EMBEDDED_TABLE].map(([address]) => classifyAddress(address));
    for (const found of all) assert.ok(ADDRESS_CLASSES.includes(found), found);
  });

  test('refuses to classify something that is not a canonical address', () => {
    for (const text of ['127.1', '2130706433', 'localhost', '', '1.2.3.4.5', '::ffff::1']) {
      assert.throws(() => classifyAddress(text), { code: 'BAD_HOST' }, text);
    }
  });
});

// Spellings an agent can use for loopback and metadata; after normaliseHost none may look public.
const SPELLINGS: readonly (readonly [string, AddressClass])[] = [
  ['2130706433', 'loopback'],
  ['0177.0.0.1', 'loopback'],
  ['0x7f.1', 'loopback'],
  ['127.1', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['0x7F.0.0.1', 'loopback'],
  ['017700000001', 'loopback'],
  ['127.0.0.1.', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['0:0:0:0:0:ffff:a9fe:a9fe', 'metadata'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['0::0', 'unspecified'],
  ['0', 'unspecified'],
  ['2852039166', 'metadata'],
  ['0xa9.0xfe.0xa9.0xfe', 'metadata'],
  ['0251.0376.0251.0376', 'metadata'],
  ['169.254.43518', 'metadata'],
  ['FD00:EC2::254', 'metadata'],
  ['10.1', 'private'],
  ['0xc0a80101', 'private'],
];

describe('AddressGuard.vet after normaliseHost', () => {
  const guard = new AddressGuard();
  for (const [spelling, expected] of SPELLINGS) {
    test(`denies ${spelling} as ${expected}`, () => {
      const { host } = normaliseHost(spelling);
      const verdict = guard.vet(host);
      assert.equal(verdict.ok, false);
      assert.equal(verdict.ok ? undefined : verdict.class, expected);
    });
  }

  test('passes a public address with its family and no allowedBy', () => {
    assert.deepEqual(guard.vet('93.184.215.14'), { ok: true, address: '93.184.215.14', family: 4 });
    assert.deepEqual(guard.vet('2606:2800:21f:cb07:6820:80da:af6b:8b2c'), { ok: true, address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 });
  });
});

describe('allow_cidrs', () => {
  const guard = new AddressGuard([
    { name: 'office-lan', cidr: '10.20.0.0/16' },
    { name: 'test-loopback', cidr: '127.0.0.0/30' },
    { name: 'v6-lab', cidr: 'fd00:1234::/32' },
    { name: 'all-link-local', cidr: '169.254.0.0/16' },
    { name: 'fake-public-azure', cidr: '168.63.0.0/16' },
  ]);

  test('lets exactly the covered range through, naming the entry', () => {
    assert.deepEqual(guard.vet('10.20.0.1'), { ok: true, address: '10.20.0.1', family: 4, allowedBy: 'office-lan' });
    assert.deepEqual(guard.vet('10.20.255.255'), { ok: true, address: '10.20.255.255', family: 4, allowedBy: 'office-lan' });
    assert.deepEqual(guard.vet('127.0.0.3'), { ok: true, address: '127.0.0.3', family: 4, allowedBy: 'test-loopback' });
    assert.deepEqual(guard.vet('fd00:1234::9'), { ok: true, address: 'fd00:1234::9', family: 6, allowedBy: 'v6-lab' });
  });

  test('keeps denying the neighbours of an allowed range', () => {
    assert.deepEqual(guard.vet('10.21.0.1'), { ok: false, address: '10.21.0.1', class: 'private' });
    assert.deepEqual(guard.vet('10.19.255.255'), { ok: false, address: '10.19.255.255', class: 'private' });
    assert.deepEqual(guard.vet('127.0.0.4'), { ok: false, address: '127.0.0.4', class: 'loopback' });
    assert.deepEqual(guard.vet('fd00:1235::9'), { ok: false, address: 'fd00:1235::9', class: 'unique_local' });
  });

  test('never lets a metadata address through, even inside an allowed range', () => {
    for (const address of ['169.254.169.254', '169.254.170.2', '168.63.129.16', '::ffff:169.254.169.254']) {
      const verdict = guard.vet(address);
      assert.equal(verdict.ok, false, address);
      assert.equal(verdict.ok ? undefined : verdict.class, 'metadata');
    }
    assert.deepEqual(guard.vet('169.254.1.1'), { ok: true, address: '169.254.1.1', family: 4, allowedBy: 'all-link-local' });
  });

  test('does not apply an IPv4 range to an IPv4-mapped IPv6 address', () => {
    assert.equal(guard.vet('::ffff:10.20.0.1').ok, false);
  });

  test('reports an invalid CIDR with the entry that holds it', () => {
    const bad = [{ name: 'fine', cidr: '10.0.0.0/8' }, { name: 'typo', cidr: '10.0.0/8' }];
    assert.throws(() => new AddressGuard(bad), (error: unknown) => {
      assert.ok(error instanceof ConnectConfigError);
      assert.equal(error.code, 'CONFIG_INVALID');
      assert.equal(error.field, 'connect.allow_cidrs[1]');
      assert.match(error.message, /"typo".*"10\.0\.0\/8"/);
      return true;
    });
    for (const cidr of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0', 'nonsense', '0x0a.0.0.0/8']) {
      assert.throws(() => new AddressGuard([{ name: 'x', cidr }]), ConnectConfigError, cidr);
    }
  });
});

describe('metadata host names', () => {
  const guard = new AddressGuard();
  for (const name of ['metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.internal']) {
    test(`recognises ${name} after normalisation`, () => {
      assert.ok(METADATA_HOST_NAMES.has(name));
      assert.equal(guard.isMetadataName(normaliseHost(`${name.toUpperCase()}.`).host), true);
    });
  }

  test('matches names exactly, not by suffix or prefix', () => {
    for (const name of ['metadata.google.internal.example.com', 'notmetadata', 'metadata.example', 'my-instance-data']) {
      assert.equal(guard.isMetadataName(name), false, name);
    }
  });
});

describe('docs/denied-ranges.md', () => {
  test('lists every class, range, metadata address and metadata name the code uses', async () => {
    const docs = await readFile(new URL('../../docs/denied-ranges.md', import.meta.url), 'utf8');
    const named = [...ADDRESS_CLASSES, ...SPECIAL_RANGES_V4.map(([cidr]) => cidr), ...SPECIAL_RANGES_V6.map(([cidr]) => cidr), ...METADATA_ADDRESSES, ...METADATA_HOST_NAMES];
    const missing = named.filter((entry) => !docs.includes(`\`${entry}\``));
    assert.deepEqual(missing, []);
  });

  test('gives each range the class the code gives it', async () => {
    const docs = await readFile(new URL('../../docs/denied-ranges.md', import.meta.url), 'utf8');
    for (const [cidr, kind] of [...SPECIAL_RANGES_V4, ...SPECIAL_RANGES_V6]) {
      const documented = kind === 'embedded' ? 'class of the embedded IPv4' : `\`${kind}\``;
      assert.ok(docs.includes(`| \`${cidr}\` | ${documented} |`), `${cidr} should be documented as ${documented}`);
    }
  });
});
