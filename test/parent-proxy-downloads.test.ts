// Sluice's own downloads follow connect.upstream_proxy like agents' traffic: a signed bundle over
// HTTPS and a blocklist feed over HTTP are fetched through a real squid, with credentials taken
// from the environment, by the running proxy and by `sluice blocklist refresh`.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { blocklistCommand } from '../src/cli/blocklist.js';
import { bundleYaml, makeKey, signBase64 } from './support/bundle-fixtures.js';
import { startServer, staticFiles } from './support/bundle-servers.js';
import { runCommand } from './support/cli.js';
import { startFeedServer } from './support/feed-server.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startParentSquid } from './support/parent-squid.js';
import { startSluice } from './support/sluice.js';
import { suiteFixture } from './support/suite-fixture.js';
import { makeTestCa } from './support/test-ca.js';
import { until } from './support/until.js';

const USER = 'sluice-egress';
const PASSWORD = 'pw-5e81-downloads';
const CREDENTIALS_ENV = 'SLUICE_TEST_PARENT_CREDENTIALS';

if (insideLoopbackNamespace(import.meta.url)) {
  describe('bundle and blocklist downloads through a parent proxy (squid)', () => {
    const fixture = suiteFixture(async (keep) => {
      const ca = keep(await makeTestCa(['origin.test']), (made) => made.remove());
      const key = makeKey('publisher.pub');
      const bundle = Buffer.from(bundleYaml({ version: 7, hosts: ['origin.test'] }));
      const files = new Map([
        ['/allowlist.yaml', { body: bundle, modified: new Date('2026-01-01T00:00:00Z') }],
        ['/allowlist.yaml.sig', { body: Buffer.from(signBase64(key, bundle)), modified: new Date('2026-01-01T00:00:00Z') }],
      ]);
      const bundles = keep(await startServer({ cert: ca.cert, key: ca.key }, staticFiles(files)));
      const feed = keep(await startFeedServer());
      feed.set('/list.txt', { body: 'listed-one.test\nlisted-two.test\n' });
      const feedPort = new URL(feed.url('/')).port;
      const bundlePort = new URL(bundles.origin).port;
      const squid = keep(await startParentSquid('origin.test', USER, PASSWORD));
      const dir = await mkdtemp(join(tmpdir(), 'sluice-parent-downloads-'));
      await writeFile(join(dir, 'publisher.pub'), key.publicPem);
      await writeFile(join(dir, 'ca.pem'), ca.caCert);
      const config = `connect:
  allow_cidrs:
    - { name: parent, cidr: 127.0.0.1/32 }
  upstream_proxy:
    - match: [origin.test]
      proxy: http://127.0.0.1:${squid.port}
      credentials_env: ${CREDENTIALS_ENV}
bundle:
  url: https://origin.test:${bundlePort}/allowlist.yaml
  keys: [publisher.pub]
  ca_file: ca.pem
  poll_interval_ms: 3600000`;
      const blocklists = `sources:\n  - name: parent-feed\n    url: http://origin.test:${feedPort}/list.txt\n    format: domains\n`;
      const env = { [CREDENTIALS_ENV]: `${USER}:${PASSWORD}` };
      const sluice = keep(await startSluice({ dir, config, blocklists, env }));
      return { squid, sluice, env, bundlePort, feedPort, feed };
    });

    test('the running proxy fetches its bundle through the parent and puts it in force', async () => {
      const { squid, sluice, bundlePort } = fixture();
      await until(async () => (await sluice.auditRecords()).some((record) => record.kind === 'bundle_policy' && record.version === 7), 'bundle 7 in force');
      const tunnels = async (): Promise<string[]> => (await squid.accessLog()).filter((line) => line.includes(`CONNECT origin.test:${bundlePort} ${USER} `));
      // squid logs a tunnel when it closes: after the download's keep-alive has run out
      await until(async () => (await tunnels()).length >= 1, 'squid logging the bundle tunnel');
      assert.ok((await tunnels()).every((line) => line.includes('TCP_TUNNEL/200')), (await tunnels()).join('\n'));
    });

    test('the running proxy downloads a blocklist feed through the parent, in absolute-form', async () => {
      const { squid, sluice, feedPort } = fixture();
      await until(async () => /sluice_blocklist_entries\{source="parent-feed"\} 2/.test(await (await fetch(`${sluice.adminUrl}/metrics`)).text()), 'the feed in force');
      const lines = (await squid.accessLog()).filter((line) => line.includes(`GET http://origin.test:${feedPort}/list.txt ${USER} `));
      assert.equal(lines.length, 1, (await squid.accessLog()).join('\n'));
    });

    test('sluice blocklist refresh goes through the same parent', async () => {
      const { squid, sluice, env, feed, feedPort } = fixture();
      const before = feed.requests.length;
      const result = await runCommand(blocklistCommand, ['refresh', '--config', sluice.configFile], env);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(feed.requests.length, before + 1);
      await until(async () => (await squid.accessLog()).filter((line) => line.includes(`GET http://origin.test:${feedPort}/list.txt ${USER} `)).length === 2, 'squid logging the refresh');
    });

    test('without its credentials variable the command refuses the configuration, naming the key', async () => {
      const { sluice } = fixture();
      const result = await runCommand(blocklistCommand, ['refresh', '--config', sluice.configFile], {});
      assert.equal(result.code, 1);
      assert.match(result.stderr, new RegExp(`connect\\.upstream_proxy\\[0\\]\\.credentials_env: the environment variable ${CREDENTIALS_ENV} is not set`));
    });
  });
}
