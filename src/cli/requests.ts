// `sluice requests list|deny`: the access requests agents raised in Strict mode, read and denied
// through the running Sluice's admin API (granting one is `sluice approve --request ID`).
import { parseArgs } from 'node:util';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, adminCall, adminFailure, adminTarget } from './admin-client.js';
import { table } from './table.js';
import type { CliIo, Command } from './command.js';
import { EXIT, usageFailure } from './exit.js';

const USAGE = `Usage: sluice requests list [--agent AGENT] [--status pending|denied] [options]
       sluice requests deny ID [options]

  list      what agents asked for and were refused (or are held waiting on): id, agent, host,
            port, times asked, last asked, status
  deny      say no to request ID: requests held for it are refused now and repeats are not
            announced again; grant one instead with \`sluice approve --request ID --for 2h --reason ..\`

Options:
      --agent AGENT        list: only this agent's requests
      --status STATUS      list: only pending or only denied requests
${ADMIN_OPTIONS_HELP}
  -h, --help               this help`;

interface RequestView {
  readonly id: string;
  readonly agent: string;
  readonly host: string;
  readonly port: number;
  readonly count: number;
  readonly last_seen: string;
  readonly status: string;
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...ADMIN_OPTIONS, agent: { type: 'string' }, status: { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (error) {
    return usageFailure(io, 'sluice requests', error, USAGE);
  }
  const { values, positionals } = parsed;
  const [action, id, ...extra] = positionals;
  const valid = (action === 'list' && id === undefined) || (action === 'deny' && id !== undefined && extra.length === 0 && values.agent === undefined && values.status === undefined);
  if (!valid) return usageFailure(io, 'sluice requests', 'expected "list [--agent A] [--status S]" or "deny ID"', USAGE);
  try {
    const target = await adminTarget(values, io);
    if (action === 'deny') {
      await adminCall(target, 'POST', `/v1/requests/${encodeURIComponent(id ?? '')}/deny`);
      io.err(`sluice requests: ${id ?? ''} denied`);
      return EXIT.ok;
    }
    const query = new URLSearchParams();
    if (values.agent !== undefined) query.set('agent', values.agent);
    if (values.status !== undefined) query.set('status', values.status);
    const reply = await adminCall(target, 'GET', `/v1/requests${query.size > 0 ? `?${query.toString()}` : ''}`);
    const requests = reply.body['requests'] as RequestView[];
    if (requests.length === 0) {
      io.err('sluice requests: none');
      return EXIT.ok;
    }
    const rows = requests.map((entry) => [entry.id, entry.agent, entry.host, String(entry.port), String(entry.count), entry.last_seen, entry.status]);
    for (const line of table([['ID', 'AGENT', 'HOST', 'PORT', 'COUNT', 'LAST_SEEN', 'STATUS'], ...rows])) io.out(line);
    return EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice requests', error);
  }
}

export const requestsCommand: Command = { usage: USAGE, run };
