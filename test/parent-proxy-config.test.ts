// connect.upstream_proxy and connect.no_proxy as configured: which destinations each parent
// serves, precise refusals of bad entries, and credentials that no serialiser or error shows.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { AddressGuard, ConnectConfigError, loadParentProxies, type UpstreamProxyConfig } from '../src/connect/index.js';
import { destinationOf } from '../src/destination.js';
import { createLogger } from '../src/obs/log.js';
import { freshDir } from './support/cli.js';
import { configIssues } from './support/config-issues.js';

const SECRET = 'hunter2-parent-secret';

function load(upstream: readonly UpstreamProxyConfig[], noProxy: readonly string[] = [], options: { dir?: string; env?: Record<string, string>; guard?: AddressGuard } = {}) {
  return loadParentProxies(
    { upstream_proxy: upstream, no_proxy: noProxy },
    { baseDir: options.dir ?? '/nonexistent', env: options.env ?? {}, ...(options.guard === undefined ? {} : { guard: options.guard }) },
  );
}

function refusedAt(field: string, pattern: RegExp): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof ConnectConfigError, String(error));
    assert.equal(error.field, field);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes(SECRET), 'the error message shows the credential');
    return true;
  };
}

describe('parent proxy routes', () => {
  test('sends a destination to the first parent whose match covers it, unless no_proxy names it', async () => {
    const parents = await load(
      [
        { match: ['*.corp.example', 'build.example.org', '203.0.113.0/24'], proxy: 'http://10.1.0.1:3128' },
        { match: ['*'], proxy: 'http://[2001:db8::8]:8080' },
      ],
      ['direct.corp.example', '198.51.100.7', '*.internal.example'],
    );
    const via = (host: string): string | undefined => parents?.routeFor(destinationOf(host, 443))?.label;
    assert.equal(via('api.corp.example'), '10.1.0.1:3128');
    assert.equal(via('Build.Example.org.'), '10.1.0.1:3128');
    assert.equal(via('203.0.113.9'), '10.1.0.1:3128');
    // `*.domain` means its subdomains, as in rule files: the domain itself falls through to `*`
    assert.equal(via('corp.example'), '[2001:db8::8]:8080');
    assert.equal(via('example.com'), '[2001:db8::8]:8080');
    assert.equal(via('direct.corp.example'), undefined);
    assert.equal(via('198.51.100.7'), undefined);
    assert.equal(via('git.internal.example'), undefined);
    assert.equal(parents?.routeForUrl('https://x.corp.example:8443/bundle.yaml')?.label, '10.1.0.1:3128');
    assert.equal(await load([]), undefined, 'no parent configured: nothing to route');
  });

  test('refuses credentials in the URL, an https parent, a bad pattern and both credential sources, at their lines', () => {
    assert.match(configIssues(`connect:\n  upstream_proxy:\n    - match: ["*"]\n      proxy: http://u:${SECRET}@proxy.example:3128\n`), /sluice\.yaml:4:\d+: connect\.upstream_proxy\.0\.proxy: expected http:\/\/host:port; credentials go in credentials_file or credentials_env/);
    assert.match(configIssues('connect:\n  upstream_proxy:\n    - match: ["*"]\n      proxy: https://proxy.example:3128\n'), /sluice\.yaml:4:\d+: connect\.upstream_proxy\.0\.proxy: expected http:\/\/host:port/);
    assert.match(configIssues('connect:\n  no_proxy: ["*.", "a b"]\n'), /sluice\.yaml:2:\d+: connect\.no_proxy\.0: expected \*, a host name, \*\.domain, an IP address or a CIDR/);
    assert.match(
      configIssues('connect:\n  upstream_proxy:\n    - match: ["*"]\n      proxy: http://proxy.example:3128\n      credentials_file: a.cred\n      credentials_env: PARENT\n'),
      /connect\.upstream_proxy\.0\.credentials_env: give credentials_file or credentials_env, not both/,
    );
  });

  test('refuses a parent at an address the guard refuses, unless an allow_cidrs entry names it', async () => {
    const local = { has: () => false };
    await assert.rejects(load([{ match: ['*'], proxy: 'http://127.0.0.1:3128' }], [], { guard: new AddressGuard([], local) }), refusedAt('connect.upstream_proxy[0].proxy', /127\.0\.0\.1 is loopback.*allow_cidrs/));
    await assert.rejects(load([{ match: ['*'], proxy: 'http://169.254.169.254:80' }], [], { guard: new AddressGuard([{ name: 'all', cidr: '169.254.0.0/16' }], local) }), refusedAt('connect.upstream_proxy[0].proxy', /metadata/));
    const opened = await load([{ match: ['*'], proxy: 'http://127.0.0.1:3128' }], [], { guard: new AddressGuard([{ name: 'cntlm', cidr: '127.0.0.1/32' }], local) });
    assert.equal(opened?.routeFor(destinationOf('example.com', 443))?.label, '127.0.0.1:3128');
  });

  test('reads user:password from a file or the environment, and refuses anything else without showing it', async (t) => {
    const dir = await freshDir(t, 'sluice-parent-cred-');
    await writeFile(join(dir, 'good.cred'), `egress:${SECRET}\n`);
    await writeFile(join(dir, 'bad.cred'), `${SECRET}\n`);
    const entry = { match: ['*'], proxy: 'http://proxy.example:3128' };
    const fromFile = await load([{ ...entry, credentials_file: 'good.cred' }], [], { dir });
    const fromEnv = await load([{ ...entry, credentials_env: 'PARENT' }], [], { env: { PARENT: `egress:${SECRET}` } });
    const expected = `Basic ${Buffer.from(`egress:${SECRET}`).toString('base64')}`;
    for (const parents of [fromFile, fromEnv]) assert.equal(parents?.routeFor(destinationOf('example.com', 443))?.authorization(), expected);
    await assert.rejects(load([{ ...entry, credentials_file: 'bad.cred' }], [], { dir }), refusedAt('connect.upstream_proxy[0].credentials_file', /must hold one line "user:password"/));
    await assert.rejects(load([{ ...entry, credentials_env: 'PARENT' }], [], { env: { PARENT: SECRET } }), refusedAt('connect.upstream_proxy[0].credentials_env', /PARENT must hold one line/));
    await assert.rejects(load([{ ...entry, credentials_file: 'missing.cred' }], [], { dir }), refusedAt('connect.upstream_proxy[0].credentials_file', /cannot read/));
  });

  test('a parent proxy logged, inspected or serialised shows its address and never its credentials', async () => {
    const parents = await load([{ match: ['*'], proxy: 'http://proxy.example:3128', credentials_env: 'PARENT' }], [], { env: { PARENT: `egress:${SECRET}` } });
    const proxy = parents?.routeFor(destinationOf('example.com', 443));
    assert.ok(proxy !== undefined);
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('info', sink);
    logger.info({ proxy, parent: { proxy } }, 'parent');
    logger.flush();
    assert.match(lines.join(''), /"proxy":"proxy\.example:3128","parent":\{"proxy":"proxy\.example:3128"\}/);
    const shown = [JSON.stringify(proxy), inspect(proxy, { depth: 5, showHidden: true }), ...lines].join('\n');
    assert.match(shown, /proxy\.example:3128/);
    const encoded = Buffer.from(`egress:${SECRET}`).toString('base64');
    assert.ok(!shown.includes(SECRET) && !shown.includes(encoded), shown);
  });
});
