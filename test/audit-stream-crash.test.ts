// The audit stream survives crashes of a real `sluice run` process: killed (SIGKILL) while the
// SIEM is down, and killed again after the SIEM stored a batch but before Sluice saw the answer.
// The SIEM ends up with every record, in order, none missing; the lost answer shows as a resend.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { freshDir } from './support/cli.js';
import { rawExchange } from './support/raw-http.js';
import { startHttpReceiver } from './support/siem-receivers.js';
import { freePort, spawnSluice, type SluiceProcess } from './support/sluice-process.js';
import { until } from './support/until.js';

type Record = { readonly seq: number; readonly hash: string; readonly kind: string };

test('killed while the SIEM is down and again before an answer arrived: every record delivered in order, none missing', async (t) => {
  const dir = await freshDir(t);
  let crashOnNextAnswer: SluiceProcess | undefined;
  const receiver = await startHttpReceiver(() => {
    // The batch is stored (answered 2xx from the receiver's side), but Sluice dies before it reads the answer.
    crashOnNextAnswer?.child.kill('SIGKILL');
    crashOnNextAnswer = undefined;
    return { status: 200, body: '{}' };
  });
  t.after(() => receiver.close());
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  await mkdir(join(dir, 'rules'));
  await writeFile(join(dir, 'blocklists.yaml'), 'sources: []\n');
  const config = join(dir, 'sluice.yaml');
  await writeFile(
    config,
    [
      `listen: { proxy: "127.0.0.1:${proxyPort}", admin: "127.0.0.1:${adminPort}" }`,
      'state_dir: state',
      'rules: [rules]',
      'blocklists: blocklists.yaml',
      'audit:',
      '  stream:',
      '    type: webhook',
      `    url: ${receiver.url}/`,
      '    batch_size: 3',
      '    flush_interval_ms: 20',
      '    retry_initial_ms: 20',
      '    retry_max_ms: 100',
      '',
    ].join('\n'),
  );
  const auditFile = join(dir, 'state', 'audit.jsonl');
  const chain = async (): Promise<Record[]> => (await readFile(auditFile, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record);
  const delivered = (): Record[] => receiver.accepted.flatMap((request) => request.body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record));
  const deny = async (): Promise<void> => {
    assert.equal((await rawExchange(proxyPort, ['CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n'])).status, 403);
  };
  const start = async (): Promise<SluiceProcess> => {
    const child = spawnSluice(['run', '--config', config]);
    t.after(() => child.stop('SIGKILL'));
    // Generous: three cold starts of a real process on a shared, busy machine.
    await child.waitForLog('sluice started', 90_000);
    return child;
  };

  let sluice = await start();
  await until(() => delivered().length > 0, 'the first start record delivered', 60_000);
  receiver.down = true;
  for (let round = 0; round < 4; round += 1) await deny();
  await until(() => receiver.requests.length > receiver.accepted.length, 'a delivery refused while down', 60_000);
  assert.equal((await sluice.stop('SIGKILL')).signal, 'SIGKILL');

  sluice = await start();
  for (let round = 0; round < 4; round += 1) await deny();
  const accepted = receiver.accepted.length;
  crashOnNextAnswer = sluice;
  receiver.down = false;
  assert.equal((await sluice.exited).signal, 'SIGKILL');
  assert.equal(receiver.accepted.length, accepted + 1, 'the batch whose answer was lost reached the SIEM');

  sluice = await start();
  await deny();
  await sluice.stop('SIGTERM');
  const records = await chain();
  await until(() => delivered().some((record) => record.seq === records.at(-1)?.seq), 'everything delivered', 60_000);

  const seqs = delivered().map((record) => record.seq);
  let highest = 0;
  for (const seq of seqs) {
    assert.ok(seq <= highest + 1, `seq ${seq} arrived after only 1..${highest}: a gap`);
    highest = Math.max(highest, seq);
  }
  assert.equal(highest, records.length);
  assert.ok(seqs.length > new Set(seqs).size, 'the batch whose answer was lost was sent again');
  const byHash = new Map(delivered().map((record) => [record.seq, record.hash]));
  assert.deepEqual(records.map((record) => byHash.get(record.seq)), records.map((record) => record.hash));
  assert.deepEqual(records.slice(-2).map((record) => record.kind), ['stop', 'checkpoint'], 'a clean stop ends with its signed shutdown checkpoint');
});
