// The nftables guard: the rendered ruleset is deterministic, nft accepts it, and inside a fresh
// network namespace it confines agent users to Sluice's listeners while Sluice goes anywhere.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { nftCommand } from '../src/cli/nft.js';
import { PACKAGE_ROOT } from '../src/config/package-root.js';
import { loadYamlText } from '../src/config/yaml.js';
import { configSchema } from '../src/config/schema.js';
import { REMOVAL, renderRuleset } from '../src/guard/render.js';
import { guardSpecFromConfig } from '../src/guard/spec.js';
import { freshDir, runCommand } from './support/cli.js';
import type { Probe, ProbeResult } from './support/nft-namespace.js';

const run = promisify(execFile);
const AGENT = { uid: 65534, gid: 65534 };
const GROUP_AGENT = { uid: 65533, gid: 4242 };
const SLUICE = { uid: 0, gid: 0 };
const CONFIG = `
listen: { proxy: '127.0.0.1:13128', admin: '127.0.0.1:19090', transparent_http: '127.0.0.1:13080', transparent_tls: '127.0.0.1:13443', dns: '127.0.0.1:15353' }
guard: { agent_gids: [4242], sluice_user: 0 }
agents:
  - { name: coder, uids: [65534] }
`;

function specOf(text: string) {
  return guardSpecFromConfig(loadYamlText('test.yaml', text, configSchema).value);
}


describe('nft ruleset rendering', () => {
  test('renders the same bytes for the same config, whatever the order of uids', () => {
    const a = renderRuleset(specOf(`${CONFIG}  - { name: b, uids: [1001, 1000] }\n`));
    const b = renderRuleset(specOf(`${CONFIG}  - { name: b, uids: [1000, 1001, 1000] }\n`));
    assert.equal(a, b);
    assert.match(a, /meta skuid \{ 1000, 1001, 65534 \} jump agent_egress/);
  });

  test('rejects an admin listener that shares a port with an agent-reachable one', () => {
    assert.throws(() => specOf(`listen: { admin: '127.0.0.1:3128' }\n`), { code: 'GUARD_APPLY_FAILED' });
  });

  test('rejects a sluice_user that could inject nft syntax', () => {
    assert.throws(() => specOf(`guard: { sluice_user: 'x" accept' }\n`), { code: 'CONFIG_INVALID' });
  });

  test('sluice nft render prints the ruleset of the given config', async (t) => {
    const dir = await freshDir(t, 'sluice-nft-');
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, CONFIG);
    assert.deepEqual(await runCommand(nftCommand, ['render', '--config', file]), { code: 0, stdout: renderRuleset(specOf(CONFIG)), stderr: '' });
  });

  test('sluice nft reports a bad config with its file and line', async (t) => {
    const dir = await freshDir(t, 'sluice-nft-');
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, 'guard:\n  agent_uid: [1]\n');
    const { code, stderr } = await runCommand(nftCommand, ['render', '--config', file]);
    assert.equal(code, 1);
    assert.match(stderr, /sluice\.yaml:2:3/);
  });

  test('render and apply name a sluice_user this host does not have, and say how to fix it', async (t) => {
    const dir = await freshDir(t, 'sluice-nft-');
    const file = join(dir, 'sluice.yaml');
    await writeFile(file, 'guard: { agent_uids: [65534], sluice_user: no-such-sluice }\n');
    for (const argv of [['render'], ['apply', '--check']]) {
      const { code, stdout, stderr: said } = await runCommand(nftCommand, [...argv, '--config', file]);
      assert.equal(code, 1, `${argv.join(' ')}: ${said}`);
      assert.equal(stdout, '', 'no ruleset is printed');
      assert.match(said, /sluice\.yaml: guard\.sluice_user "no-such-sluice" is not a user on this host/);
      assert.match(said, /useradd --system no-such-sluice\b.*numeric uid/);
      assert.doesNotMatch(said, /User does not exist/);
    }
  });

  test('render accepts a sluice_user that exists here, and any numeric uid without looking it up', async (t) => {
    const dir = await freshDir(t, 'sluice-nft-');
    for (const user of ['root', '4000000000']) {
      const file = join(dir, `${user}.yaml`);
      await writeFile(file, `guard: { agent_uids: [65534], sluice_user: ${user} }\n`);
      const { code, stdout } = await runCommand(nftCommand, ['render', '--config', file]);
      assert.equal(code, 0, user);
      assert.match(stdout, new RegExp(`meta skuid ${user === 'root' ? '"root"' : user} accept`));
    }
  });

  test('the static example in nftables/ is what render prints for its documented config', async () => {
    const example = await readFile(join(PACKAGE_ROOT, 'nftables', 'sluice.nft'), 'utf8');
    const rendered = renderRuleset(specOf('guard: { agent_uids: [2000, 2001], agent_gids: [2500] }'));
    const body = (text: string): string => text.split('\n').filter((line) => !line.startsWith('#')).join('\n');
    assert.equal(body(example), body(rendered));
  });

  test('nft accepts the rendered ruleset and the removal in check mode', async () => {
    const rendered = spawnSync('unshare', ['-n', 'nft', '-c', '-f', '-'], { input: renderRuleset(specOf(CONFIG)) });
    assert.equal(rendered.status, 0, rendered.stderr.toString());
    const checked = spawnSync('unshare', ['-n', 'nft', '-c', '-f', '-'], { input: REMOVAL });
    assert.equal(checked.status, 0, checked.stderr.toString());
  });
});

describe('nft guard inside a network namespace', () => {
  const spec = specOf(CONFIG);
  const p = spec.ports;
  const report: Record<string, ProbeResult> = {};
  let dir = '';
  const probes: Probe[] = [
    { label: 'agent to proxy', ...AGENT, host: '127.0.0.1', port: p.proxy },
    { label: 'agent to proxy v6', ...AGENT, host: '::1', port: p.proxy },
    { label: 'agent to admin', ...AGENT, host: '127.0.0.1', port: p.admin },
    { label: 'agent to admin v6', ...AGENT, host: '::1', port: p.admin },
    { label: 'agent to other local port', ...AGENT, host: '127.0.0.1', port: 17000 },
    { label: 'agent to outside http', ...AGENT, host: '198.18.0.1', port: 80 },
    { label: 'agent to outside https', ...AGENT, host: '198.18.0.1', port: 443 },
    { label: 'agent to outside https v6', ...AGENT, host: '2001:db8::1', port: 443 },
    { label: 'agent to outside other port', ...AGENT, host: '198.18.0.1', port: 8080 },
    { label: 'agent to outside other port v6', ...AGENT, host: '2001:db8::1', port: 22 },
    { label: 'agent quic', ...AGENT, host: '198.18.0.1', port: 443, udp: true },
    { label: 'agent dns anywhere', ...AGENT, host: '198.18.0.1', port: 53, udp: true },
    { label: 'group agent to other local port', ...GROUP_AGENT, host: '127.0.0.1', port: 17000 },
    { label: 'group agent to proxy', ...GROUP_AGENT, host: '127.0.0.1', port: p.proxy },
    { label: 'sluice to other local port', ...SLUICE, host: '127.0.0.1', port: 17000 },
    { label: 'sluice to admin', ...SLUICE, host: '127.0.0.1', port: p.admin },
  ];
  const afterCrash: Probe[] = [
    { label: 'agent to outside https after crash', ...AGENT, host: '198.18.0.1', port: 443 },
    { label: 'agent to outside other port after crash', ...AGENT, host: '198.18.0.1', port: 8080 },
  ];
  const afterRemoval: Probe[] = [{ label: 'agent to other local port after removal', ...AGENT, host: '127.0.0.1', port: 17000 }];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-nftns-'));
    const plan = join(dir, 'plan.json');
    await writeFile(
      plan,
      JSON.stringify({
        ruleset: renderRuleset(spec),
        listeners: { proxy: p.proxy, admin: p.admin, 'transparent-http': p.transparentHttp, 'transparent-tls': p.transparentTls, other: 17000 },
        udpListeners: { dns: p.dns },
        probes,
        afterCrash,
        afterRemoval,
      }),
    );
    const helper = fileURLToPath(new URL('./support/nft-namespace.js', import.meta.url));
    // The namespace, its veth and the table vanish with the unshare'd process, even on failure.
    const { stdout } = await run('unshare', ['-n', process.execPath, helper, 'plan', plan], { timeout: 45_000 });
    Object.assign(report, JSON.parse(stdout) as Record<string, ProbeResult>);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('lets an agent reach the proxy listener on IPv4 and IPv6', () => {
    assert.deepEqual(report['agent to proxy'], { reply: 'proxy' });
    assert.deepEqual(report['agent to proxy v6'], { reply: 'proxy' });
  });
  test('resets an agent that dials the admin listener, on IPv4 and IPv6', () => {
    assert.deepEqual(report['agent to admin'], { error: 'ECONNREFUSED' });
    assert.deepEqual(report['agent to admin v6'], { error: 'ECONNREFUSED' });
  });
  test('resets an agent that dials a listening port that is not Sluice', () => {
    assert.deepEqual(report['agent to other local port'], { error: 'ECONNREFUSED' });
    assert.deepEqual(report['group agent to other local port'], { error: 'ECONNREFUSED' });
    assert.deepEqual(report['group agent to proxy'], { reply: 'proxy' });
  });
  test('redirects an agent\'s direct TCP 80 and 443 to the transparent listeners', () => {
    assert.deepEqual(report['agent to outside http'], { reply: 'transparent-http' });
    assert.deepEqual(report['agent to outside https'], { reply: 'transparent-tls' });
    assert.deepEqual(report['agent to outside https v6'], { reply: 'transparent-tls' });
  });
  test('rejects other ports at once rather than letting them time out', () => {
    assert.deepEqual(report['agent to outside other port'], { error: 'ECONNREFUSED' });
    assert.deepEqual(report['agent to outside other port v6'], { error: 'ECONNREFUSED' });
  });
  test('rejects QUIC (UDP 443)', () => {
    assert.deepEqual(report['agent quic'], { error: 'EPERM' });
  });
  test('sends an agent\'s DNS query, wherever addressed, to Sluice\'s DNS listener', () => {
    assert.deepEqual(report['agent dns anywhere'], { reply: 'dns' });
  });
  test('leaves Sluice\'s own user unrestricted', () => {
    assert.deepEqual(report['sluice to other local port'], { reply: 'other' });
    assert.deepEqual(report['sluice to admin'], { reply: 'admin' });
  });
  test('fails closed: with Sluice gone the table stays and agents reach nothing', () => {
    assert.deepEqual(report['table still loaded after crash'], { reply: 'loaded' });
    assert.deepEqual(report['agent to outside https after crash'], { error: 'ECONNREFUSED' });
    assert.deepEqual(report['agent to outside other port after crash'], { error: 'ECONNREFUSED' });
  });
  test('nft remove lifts the confinement', () => {
    assert.deepEqual(report['agent to other local port after removal'], { reply: 'other' });
  });
});
