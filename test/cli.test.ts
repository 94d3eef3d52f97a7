// The `sluice` command as an operator meets it: help and version for every command, `sluice run`
// as a real child process (admin endpoints, one proxied request, signals, audit `stop`), config
// errors as file:line:column with exit 1, the embedded default on 3128/9090, and `sluice check`
// on the shipped example. Runs in a loopback-only network namespace: the embedded default names
// the real blocklist feeds, and no packet of this test may leave the machine.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { VERSION } from '../src/config/version.js';
import { curl } from './support/curl.js';
import { insideLoopbackNamespace } from './support/netns.js';
import { startHttpOrigin, type Origin } from './support/origins.js';
import { freshDir, REPO_ROOT, runSluice } from './support/cli.js';
import { freePort, portIsFree, spawnSluice, type SluiceProcess } from './support/sluice-process.js';

/** Starts `sluice run` and makes sure the test never leaves it behind. */
function launch(t: TestContext, args: readonly string[], env: NodeJS.ProcessEnv = process.env): SluiceProcess {
  const sluice = spawnSluice(args, { env });
  t.after(() => sluice.stop('SIGKILL', 1_000));
  return sluice;
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url);
  return { status: response.status, text: await response.text() };
}

async function auditRecords(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8');
  return text.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The command names `sluice --help` lists, so a newly registered command is covered too. */
function commandsIn(overview: string): string[] {
  const block = overview.split('Commands:\n')[1] ?? '';
  return block.split('\n\n')[0]?.split('\n').map((line) => line.trim().split(/\s+/)[0] ?? '').filter((name) => name !== '') ?? [];
}

if (insideLoopbackNamespace(import.meta.url)) {
  describe('sluice help, version and routing', () => {
    test('--help lists every command and exits 0', async () => {
      const result = await runSluice(['--help']);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /^sluice \S+: egress proxy for AI agents\n/);
      assert.match(result.stdout, /Usage: sluice COMMAND \[options\]/);
      const names = commandsIn(result.stdout);
      for (const name of ['run', 'check', 'audit', 'learn', 'bundle', 'nft']) assert.ok(names.includes(name), `${name} missing from --help`);
    });

    test('--version prints the package version and exits 0', async () => {
      const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
      const result = await runSluice(['--version']);
      assert.equal(result.code, 0);
      assert.equal(result.stdout, `${VERSION}\n`);
      assert.equal(VERSION, manifest.version);
    });

    test('COMMAND --help prints that command\'s usage and exits 0, for every registered command', async () => {
      const names = commandsIn((await runSluice(['--help'])).stdout);
      assert.ok(names.length >= 6);
      for (const name of names) {
        const result = await runSluice([name, '--help']);
        assert.equal(result.code, 0, `sluice ${name} --help: ${result.stderr}`);
        assert.equal(result.stderr, '');
        assert.match(result.stdout, new RegExp(`Usage:\\s+sluice ${name}\\b`), `sluice ${name} --help`);
        assert.ok(result.stdout.split('\n').length >= 3, `sluice ${name} --help says more than one line`);
      }
    });

    test('an unknown command exits 2 naming it, and so does no command at all', async () => {
      const unknown = await runSluice(['serve']);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /^sluice: unknown command "serve"/);
      assert.match(unknown.stderr, /Commands:/);
      assert.equal((await runSluice([])).code, 2);
    });
  });

  describe('sluice run --config FILE as a child process', () => {
    let origin: Origin;

    before(async () => {
      origin = await startHttpOrigin();
    });

    after(async () => {
      await origin.close();
    });

    test('serves admin endpoints, proxies a request, keeps tokens out of logs and exits 0 on SIGTERM with a stop record', async (t) => {
      const dir = await freshDir(t, 'sluice-cli-');
      const token = `tok-${randomBytes(12).toString('hex')}`;
      const wrongToken = `wrong-${token}`;
      const proxyPort = await freePort();
      let adminPort = await freePort();
      while (adminPort === proxyPort) adminPort = await freePort();
      await mkdir(join(dir, 'rules'));
      await writeFile(join(dir, 'rules', 'deny.yaml'), 'rules:\n  - id: deny-port-one\n    action: deny\n    hosts: [localhost]\n    ports: [1]\n');
      await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
      const config = join(dir, 'sluice.yaml');
      await writeFile(config, [
        'listen:',
        `  proxy: "127.0.0.1:${proxyPort}"`,
        `  admin: "127.0.0.1:${adminPort}"`,
        'state_dir: state',
        'rules: [rules]',
        'blocklists: blocklists.yaml',
        'agents:',
        `  - { name: builder, token_sha256: ["${createHash('sha256').update(token).digest('hex')}"] }`,
        'connect:',
        '  allow_cidrs: [{ name: test-origin, cidr: 127.0.0.0/8 }]',
        // debug logs the most: the redaction must hold there too
        'log: { level: debug }',
        '',
      ].join('\n'));
      const sluice = launch(t, ['run', '--config', config]);
      const started = await sluice.waitForLog('sluice started');
      assert.deepEqual(started.proxy, { address: '127.0.0.1', family: 'IPv4', port: proxyPort });

      const admin = `http://127.0.0.1:${adminPort}`;
      assert.deepEqual(await get(`${admin}/healthz`), { status: 200, text: 'ok\n' });
      assert.deepEqual(await get(`${admin}/readyz`), { status: 200, text: 'ready\n' });

      const proxied = await curl(['-x', `http://127.0.0.1:${proxyPort}`, '-U', `builder:${token}`, `http://127.0.0.1:${origin.port}/via-cli`]);
      assert.equal(proxied.status, 200, proxied.stderr);
      assert.equal(origin.requests.at(-1)?.url, '/via-cli');
      assert.equal(origin.requests.at(-1)?.headers['proxy-authorization'], undefined, 'the proxy credential never reaches the origin');
      const refused = await curl(['-x', `http://127.0.0.1:${proxyPort}`, '--proxy-header', `Proxy-Authorization: Bearer ${wrongToken}`, `http://127.0.0.1:${origin.port}/refused`]);
      assert.equal(refused.status, 407);

      const metrics = await get(`${admin}/metrics`);
      assert.equal(metrics.status, 200);
      for (const name of ['sluice_decisions_total', 'sluice_connections_active', 'sluice_bytes_total', 'sluice_audit_records_total', 'sluice_rules_loaded', 'sluice_upstream_connect_seconds']) {
        assert.match(metrics.text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
      }
      assert.match(metrics.text, /^sluice_decisions_total\{[^}]*verdict="learn"[^}]*\} 1$/m);
      assert.match(metrics.text, /^sluice_decisions_total\{[^}]*reason="auth_invalid"[^}]*\} 1$/m);
      assert.match(metrics.text, /^sluice_rules_loaded 1$/m);
      assert.match(metrics.text, /^sluice_bytes_total\{direction="downstream"\} [1-9]\d*$/m);
      assert.match(metrics.text, /^sluice_upstream_connect_seconds_count 1$/m);
      for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes']) {
        assert.match(metrics.text, new RegExp(`^${name} `, 'm'), `process metric ${name}`);
      }

      const exit = await sluice.stop('SIGTERM');
      assert.deepEqual(exit, { code: 0, signal: null }, sluice.stderr());
      const records = await auditRecords(join(dir, 'state', 'audit.jsonl'));
      assert.equal(records[0]?.kind, 'start');
      assert.deepEqual(records.slice(-2).map((record) => [record.kind, record.trigger]), [['stop', undefined], ['checkpoint', 'shutdown']]);
      const verify = await runSluice(['audit', 'verify', join(dir, 'state', 'audit.jsonl')]);
      assert.equal(verify.code, 0, verify.stdout);
      assert.match(verify.stdout, new RegExp(`^ok: ${records.length} records verified`));

      assert.deepEqual(sluice.strayLines, [], 'stdout carries only JSON log lines');
      for (const line of sluice.logs) {
        assert.equal(typeof line.level, 'number');
        assert.equal(typeof line.time, 'number');
        assert.equal(typeof line.msg, 'string');
      }
      assert.ok(sluice.logs.some((line) => line.msg === 'stopping' && line.signal === 'SIGTERM'));
      const everything = sluice.stdout() + sluice.stderr() + (await readFile(join(dir, 'state', 'audit.jsonl'), 'utf8'));
      for (const secret of [token, wrongToken, Buffer.from(`builder:${token}`).toString('base64')]) {
        assert.ok(!everything.includes(secret), 'a proxy token appears in the logs or the audit chain');
      }
    });

    // Each config starts with three lines naming state, rules and blocklists; positions count them.
    const broken: readonly { what: string; config: string; rules?: string; expected: (dir: string) => string }[] = [
      {
        what: 'a misspelt key, with the key it should be',
        config: 'mode: learn\nlisen:\n  proxy: "127.0.0.1:0"\n',
        expected: (dir) => `${join(dir, 'sluice.yaml')}:5:1: lisen: unknown key "lisen" (did you mean "listen"?)`,
      },
      {
        what: 'a bad CIDR',
        config: 'connect:\n  allow_cidrs:\n    - { name: lab, cidr: 10.0.0.0/33 }\n',
        expected: (dir) => `${join(dir, 'sluice.yaml')}:6:26: connect.allow_cidrs.0.cidr: expected a CIDR such as 10.0.0.0/8 or fd00::/8`,
      },
      {
        what: 'a bad rule file',
        config: 'listen: { proxy: "127.0.0.1:0", admin: "127.0.0.1:0" }\n',
        rules: 'rules:\n  - id: fine-id\n    action: permit\n    hosts: [example.com]\n',
        expected: (dir) => `${join(dir, 'rules', 'bad.yaml')}:3:13: rules.0.action: expected an action, allow or deny`,
      },
    ];
    for (const { what, config, rules, expected } of broken) {
      test(`exits 1 on ${what}, printing file:line:column: message`, async (t) => {
        const dir = await freshDir(t, 'sluice-cli-');
        await mkdir(join(dir, 'rules'));
        if (rules !== undefined) await writeFile(join(dir, 'rules', 'bad.yaml'), rules);
        await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
        await writeFile(join(dir, 'sluice.yaml'), `state_dir: state\nrules: [rules]\nblocklists: blocklists.yaml\n${config}`);
        const sluice = launch(t, ['run', '--config', join(dir, 'sluice.yaml')]);
        assert.deepEqual(await sluice.exitWithin(10_000), { code: 1, signal: null });
        assert.equal(sluice.stderr(), `${expected(dir)}\n`);
        assert.deepEqual(sluice.logs, [], 'nothing started, so nothing was logged');
      });
    }
  });

  describe('sluice run with the embedded default', () => {
    const DEFAULT_PROXY = 3128;
    const DEFAULT_ADMIN = 9090;

    /** Holds a port the way another program would, until the test ends. */
    async function occupy(t: TestContext, port: number): Promise<void> {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    }

    test('listens on 127.0.0.1:3128 and 127.0.0.1:9090, keeps state in SLUICE_STATE_DIR, refuses loopback and stops on SIGINT', async (t) => {
      const dir = await freshDir(t, 'sluice-cli-');
      const free = (await portIsFree(DEFAULT_PROXY)) && (await portIsFree(DEFAULT_ADMIN));
      const sluice = launch(t, ['run'], { ...process.env, SLUICE_STATE_DIR: dir });
      if (!free) {
        // Something else holds a default port on this machine: the failure must say so plainly.
        assert.equal((await sluice.exitWithin(10_000)).code, 1);
        assert.match(sluice.stderr(), /^sluice: cannot start: listen EADDRINUSE: address already in use 127\.0\.0\.1:(3128|9090)\n/);
        return;
      }
      const started = await sluice.waitForLog('sluice started');
      assert.deepEqual(started.proxy, { address: '127.0.0.1', family: 'IPv4', port: DEFAULT_PROXY });
      assert.deepEqual(started.admin, { address: '127.0.0.1', family: 'IPv4', port: DEFAULT_ADMIN });
      assert.equal(started.mode, 'learn');
      assert.equal(started.state_dir, dir);
      assert.deepEqual(await get(`http://127.0.0.1:${DEFAULT_ADMIN}/readyz`), { status: 200, text: 'ready\n' });
      // The default forbids loopback destinations, so the proxy cannot be turned on its own admin port.
      const denied = await curl(['-x', `http://127.0.0.1:${DEFAULT_PROXY}`, `http://127.0.0.1:${DEFAULT_ADMIN}/metrics`]);
      assert.equal(denied.status, 403);
      assert.match(denied.headers, /sluice-decision: deny; reason=destination_forbidden/i);
      // Ctrl-C in a terminal stops it as cleanly as SIGTERM from a service manager.
      assert.deepEqual(await sluice.stop('SIGINT'), { code: 0, signal: null });
      assert.ok(sluice.logs.some((line) => line.msg === 'stopping' && line.signal === 'SIGINT'));
      const records = await auditRecords(join(dir, 'audit.jsonl'));
      assert.equal(records[0]?.kind, 'start');
      assert.equal(records[0]?.config, null, 'the embedded default has no file');
      assert.deepEqual(records.map((record) => record.kind), ['start', 'decision', 'stop', 'checkpoint']);
    });

    for (const [what, port] of [['proxy', DEFAULT_PROXY], ['admin', DEFAULT_ADMIN]] as const) {
      test(`exits 1 with "address already in use" when the default ${what} port is taken`, async (t) => {
        const dir = await freshDir(t, 'sluice-cli-');
        if (await portIsFree(port)) await occupy(t, port);
        const sluice = launch(t, ['run'], { ...process.env, SLUICE_STATE_DIR: dir });
        assert.deepEqual(await sluice.exitWithin(10_000), { code: 1, signal: null });
        assert.equal(sluice.stderr(), `sluice: cannot start: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
      });
    }
  });

  describe('examples/sluice.yaml', () => {
    test('sluice check accepts the shipped example config', async () => {
      const result = await runSluice(['check', 'examples/sluice.yaml']);
      assert.equal(result.stderr, '');
      assert.match(result.stdout, /^ok: \d+ files, \d+ rules\n$/);
      assert.equal(result.code, 0);
    });
  });
}
