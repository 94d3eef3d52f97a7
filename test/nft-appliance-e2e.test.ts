// The whole appliance in network namespaces: an "internet" namespace serving on 198.18.0.1 and
// 2001:db8::1, and this one running Sluice with the nft guard loaded. Agents (uid 65534) reach
// the internet only through Sluice; Sluice's own user (root here) reaches it directly.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { runNft } from '../src/guard/apply.js';
import { renderRuleset } from '../src/guard/render.js';
import { guardSpecFromConfig } from '../src/guard/spec.js';
import { createLogger } from '../src/obs/log.js';
import type { Probe, ProbeOutcome } from './support/appliance-agent.js';
import { runAsUser } from './support/as-user.js';
import { Sluice } from '../src/app.js';
import { startDnsServer, type TestDnsServer } from './support/dns-server.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { clientHelloMessage, echExtension, records, serverNameExtension } from './support/client-hello-builder.js';
import { makeTestCa, type TestCa } from './support/test-ca.js';

const run = promisify(execFile);
const AGENT_UID = 65534;
const PORTS = { proxy: 13128, admin: 19090, http: 13080, tls: 13443, dns: 15353 };
const RULES = `rules:
  - id: origin
    action: allow
    hosts: [origin.test]
`;

function config(dnsPort: number): string {
  return `mode: strict
state_dir: state
rules: [rules]
blocklists: blocklists.yaml
listen:
  proxy: 127.0.0.1:${PORTS.proxy}
  admin: 127.0.0.1:${PORTS.admin}
  transparent_http: 127.0.0.1:${PORTS.http}
  transparent_tls: 127.0.0.1:${PORTS.tls}
  dns: 127.0.0.1:${PORTS.dns}
agents:
  - { name: coder, uids: [${AGENT_UID}] }
anonymous: { allow: false }
guard: { sluice_user: 0 }
connect:
  resolvers: ['127.0.0.1:${dnsPort}']
  timeout_ms: 2000
  allow_cidrs:
    - { name: test-internet, cidr: 198.18.0.0/15 }
    - { name: test-internet-v6, cidr: '2001:db8::/32' }
log: { level: silent }
`;
}

/** Runs one probe as the agent's UID and returns what it saw. */
async function asAgent(probe: Probe): Promise<ProbeOutcome> {
  const script = fileURLToPath(new URL('./support/appliance-agent.js', import.meta.url));
  return JSON.parse(await runAsUser({ uid: AGENT_UID, gid: AGENT_UID }, script, [JSON.stringify(probe)])) as ProbeOutcome;
}

if (insideLoopbackNamespace(import.meta.url)) {
  describe('appliance end to end in network namespaces', () => {
    let dir = '';
    let ca: TestCa;
    let caFile = '';
    let internet: ChildProcessByStdio<Writable, Readable, null> | undefined;
    let zone: TestDnsServer;
    let appliance: Sluice | undefined;
    let auditFile = '';

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'sluice-e2e-'));
      ca = await makeTestCa(['origin.test', 'other.test']);
      // The agent (nobody) must read the CA it trusts.
      await chmod(dir, 0o755);
      caFile = join(dir, 'ca.pem');
      await writeFile(caFile, ca.caCert, { mode: 0o644 });
      await writeFile(join(dir, 'origin.key'), ca.key);
      await writeFile(join(dir, 'origin.pem'), ca.cert);

      const script = fileURLToPath(new URL('./support/appliance-internet.js', import.meta.url));
      const child = spawn('unshare', ['-n', process.execPath, script, join(dir, 'origin.key'), join(dir, 'origin.pem')], { stdio: ['pipe', 'pipe', 'inherit'] });
      internet = child;
      const said = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const next = async (): Promise<string> => {
        const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`internet namespace exited with ${String(code)}`))));
        const line = await Promise.race([said.next(), exited]);
        return line.done === true ? '' : line.value;
      };
      assert.equal(await next(), 'inside');
      await run('ip', ['link', 'add', 'name', 'sl-app', 'type', 'veth', 'peer', 'name', 'sl-net', 'netns', String(child.pid)]);
      await run('ip', ['addr', 'add', '198.18.0.2/15', 'dev', 'sl-app']);
      await run('ip', ['-6', 'addr', 'add', '2001:db8::2/64', 'dev', 'sl-app', 'nodad']);
      await run('ip', ['link', 'set', 'sl-app', 'up']);
      child.stdin.write('go\n');
      assert.equal(await next(), 'ready');

      zone = await startDnsServer({ 'origin.test': { A: ['198.18.0.1'], AAAA: ['2001:db8::1'] }, 'other.test': { A: ['198.18.0.1'] } });
      await mkdir(join(dir, 'rules'));
      await writeFile(join(dir, 'rules', 'origin.yaml'), RULES);
      await writeFile(join(dir, 'sluice.yaml'), config(zone.port));
      await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
      const loaded = await loadConfig(join(dir, 'sluice.yaml'), { isRoot: true });
      auditFile = loaded.auditFile;
      appliance = await Sluice.start(loaded, { log: createLogger('silent'), processMetrics: false });
      await runNft(renderRuleset(guardSpecFromConfig(loaded.config)));
    });

    after(async () => {
      await appliance?.close();
      await zone.stop();
      // Closing its stdin ends the internet process; its namespace and the veth go with it.
      internet?.stdin.end();
      await ca.remove();
      await rm(dir, { recursive: true, force: true });
    });

    const auditRecords = async (): Promise<Record<string, unknown>[]> =>
      (await readFile(auditFile, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const https = (host: string, servername: string, extra: { proxy?: number } = {}): Promise<ProbeOutcome> => asAgent({ op: 'https', host, port: 443, servername, ca: caFile, ...extra });

    test('rejects an agent dialling the internet directly, on IPv4 and IPv6', async () => {
      assert.deepEqual(await asAgent({ op: 'tcp', host: '198.18.0.1', port: 8080 }), { error: 'ECONNREFUSED' });
      assert.deepEqual(await asAgent({ op: 'tcp', host: '2001:db8::1', port: 8080 }), { error: 'ECONNREFUSED' });
    });

    test('lets Sluice\'s own user reach the internet directly', async () => {
      const socket = connect({ host: '198.18.0.1', port: 8080 });
      const reply = await new Promise<string>((resolve, reject) => {
        socket.setEncoding('utf8');
        socket.once('data', resolve);
        socket.once('error', reject);
      });
      socket.destroy();
      assert.equal(reply.trim(), 'direct');
    });

    test('applies policy to requests through HTTPS_PROXY', async () => {
      const allowed = await https('origin.test', 'origin.test', { proxy: PORTS.proxy });
      assert.deepEqual([allowed.status, allowed.reply], [200, 'https origin for origin.test']);
      assert.equal((await https('other.test', 'other.test', { proxy: PORTS.proxy })).status, 403);
    });

    test('serves transparent HTTPS by SNI with no proxy settings, whatever address was dialled', async () => {
      const direct = await https('198.18.0.1', 'origin.test');
      assert.deepEqual([direct.status, direct.reply], [200, 'https origin for origin.test']);
      // Sluice resolves the SNI itself: an address with nothing behind it still reaches the origin.
      assert.equal((await https('198.18.0.99', 'origin.test')).status, 200);
      assert.equal((await https('2001:db8::1', 'origin.test')).status, 200);
    });

    test('refuses transparent HTTPS to a name the policy denies, with a TLS alert', async () => {
      assert.match((await https('198.18.0.1', 'other.test')).error ?? '', /ALERT_ACCESS_DENIED/);
    });

    test('answers a hello without SNI, with ECH, or not TLS at all with an access_denied alert, and audits it', async () => {
      // RFC 8446 6: a fatal (2) access_denied (49 = 0x31) alert record
      const alert = '15030300020231';
      for (const bytes of [records(clientHelloMessage([])), records(clientHelloMessage([serverNameExtension('origin.test'), echExtension])), Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
        assert.deepEqual(await asAgent({ op: 'raw', host: '198.18.0.1', port: 443, hex: bytes.toString('hex') }), { reply: alert });
      }
      const codes = (await auditRecords()).filter((record) => record['kind'] === 'bad_request').map((record) => record['code']);
      for (const code of ['SNI_MISSING', 'ECH_REFUSED', 'CLIENT_HELLO_INVALID']) assert.ok(codes.includes(code), JSON.stringify(codes));
    });

    test('serves transparent HTTP by Host header', async () => {
      const allowed = await asAgent({ op: 'http', host: '198.18.0.1', port: 80, hostHeader: 'origin.test' });
      assert.deepEqual([allowed.status, allowed.reply], [200, 'http origin for origin.test']);
      assert.equal((await asAgent({ op: 'http', host: '198.18.0.1', port: 80, hostHeader: 'other.test' })).status, 403);
      const hostless = await asAgent({ op: 'raw', host: '198.18.0.1', port: 80, hex: Buffer.from('GET / HTTP/1.1\r\n\r\n').toString('hex') });
      assert.match(Buffer.from(hostless.reply ?? '', 'hex').toString('latin1'), /^HTTP\/1\.1 400 .*bad_host/);
    });

    test('rejects QUIC and keeps the admin listener out of reach', async () => {
      assert.deepEqual(await asAgent({ op: 'udp', host: '198.18.0.1', port: 443 }), { error: 'EPERM' });
      assert.deepEqual(await asAgent({ op: 'udp', host: '2001:db8::1', port: 443 }), { error: 'EPERM' });
      assert.deepEqual(await asAgent({ op: 'tcp', host: '127.0.0.1', port: PORTS.admin }), { error: 'ECONNREFUSED' });
    });

    test('answers the agent\'s DNS only for names the policy allows and audits the refusal', async () => {
      assert.deepEqual(await asAgent({ op: 'dns', host: '198.18.0.1', port: 53, name: 'origin.test' }), { rcode: 'NOERROR', addresses: ['198.18.0.1'] });
      assert.deepEqual(await asAgent({ op: 'dns', host: '198.18.0.1', port: 53, name: 'other.test' }), { rcode: 'REFUSED', addresses: [] });
      // The record is appended as the answer goes out: give the group commit a moment.
      let refused: Record<string, unknown>[] = [];
      for (let tries = 0; tries < 50 && refused.length === 0; tries++) {
        refused = (await auditRecords()).filter((record) => record['kind'] === 'dns');
        if (refused.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(
        refused.map((record) => [record['ingress'], record['agent'], record['via'], record['name'], record['outcome']]),
        [['dns', 'coder', 'uid', 'other.test', 'refused']],
      );
    });

    test('attributes transparent connections to the agent by its UID in the audit log', async () => {
      const tls = (await auditRecords()).filter((record) => record['kind'] === 'decision' && record['method'] === 'TLS');
      assert.ok(tls.length >= 4, JSON.stringify(tls));
      assert.ok(tls.every((record) => record['agent'] === 'coder' && record['via'] === 'uid'), JSON.stringify(tls));
      assert.ok(tls.every((record) => record['ingress'] === 'transparent_tls'), 'redirected port 443 is recorded as such');
    });

    test('fails closed: with Sluice stopped the agent reaches nothing, the guard still loaded', async () => {
      await appliance?.close();
      appliance = undefined;
      assert.equal((await https('198.18.0.1', 'origin.test')).error, 'ECONNREFUSED');
      assert.deepEqual(await asAgent({ op: 'tcp', host: '198.18.0.1', port: 8080 }), { error: 'ECONNREFUSED' });
      assert.deepEqual(await asAgent({ op: 'tcp', host: '198.18.0.1', port: 80 }), { error: 'ECONNREFUSED' });
      const { stdout } = await run('nft', ['list', 'table', 'inet', 'sluice']);
      assert.match(stdout, /agent_egress/);
    });
  });
}
