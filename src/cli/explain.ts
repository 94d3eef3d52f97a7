// `sluice explain` and `sluice mode`: ask the running Sluice what it would decide for a request
// (exit 0 allow, 1 deny), and switch an agent between Learn and Strict while it runs.
import { parseArgs } from 'node:util';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, adminCall, adminFailure, adminTarget } from './admin-client.js';
import type { CliIo, Command } from './command.js';
import { EXIT, usageFailure } from './exit.js';

const EXPLAIN_USAGE = `Usage: sluice explain --agent AGENT --host HOST [--port PORT] [--method METHOD --path PATH]

Runs the decision the running Sluice would take now for AGENT reaching HOST:PORT (443 unless
given; with --method and --path, a plain-HTTP request, else a CONNECT tunnel) and prints the
verdict, the rule, mode, blocklist entry, approval or forbidden address that decides it, and why.
Exit status: 0 allowed (or let through by Learn mode), 1 denied.

Options:
      --agent AGENT     a configured agent's name (or anonymous)
      --host HOST       destination host name or IP address
      --port PORT       destination port (default 443)
      --method METHOD   HTTP method (with --path)
      --path PATH       HTTP path (with --method)
${ADMIN_OPTIONS_HELP}
  -h, --help            this help`;

const MODE_USAGE = `Usage: sluice mode AGENT learn|strict [--config FILE] [--token-file FILE]

Switches AGENT between Learn and Strict in the running Sluice (admin token). The switch is
audited and kept across restarts until the config changes that agent's mode.

Options:
${ADMIN_OPTIONS_HELP}
  -h, --help            this help`;

interface Explanation {
  readonly verdict: string;
  readonly reason: string;
  readonly rule: string | null;
  readonly rule_file: string | null;
  readonly agent: { readonly name: string; readonly mode: string };
  readonly destination: { readonly host: string; readonly port: number };
  readonly blocklist: { readonly source: string; readonly entry: string } | null;
  readonly approval: { readonly id: string; readonly expires: string; readonly approver: string } | null;
  readonly forbidden_class: string | null;
  readonly why: string;
  readonly addresses_checked: boolean;
}

async function explain(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...ADMIN_OPTIONS, agent: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, method: { type: 'string' }, path: { type: 'string' } },
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice explain', error, EXPLAIN_USAGE);
  }
  const { values } = parsed;
  if (values.agent === undefined || values.host === undefined) return usageFailure(io, 'sluice explain', '--agent and --host are required', EXPLAIN_USAGE);
  if ((values.method === undefined) !== (values.path === undefined)) return usageFailure(io, 'sluice explain', '--method and --path go together', EXPLAIN_USAGE);
  const query = new URLSearchParams({ agent: values.agent, host: values.host });
  for (const name of ['port', 'method', 'path'] as const) {
    const value = values[name];
    if (value !== undefined) query.set(name, value);
  }
  try {
    const reply = await adminCall(await adminTarget(values, io), 'GET', `/v1/explain?${query.toString()}`);
    const result = reply.body as unknown as Explanation;
    io.out(`verdict:   ${result.verdict} (${result.reason})`);
    io.out(`why:       ${result.why}`);
    io.out(`agent:     ${result.agent.name} (${result.agent.mode} mode)`);
    io.out(`target:    ${result.destination.host}:${result.destination.port}`);
    if (result.rule !== null) io.out(`rule:      ${result.rule}${result.rule_file === null ? '' : ` (${result.rule_file})`}`);
    if (result.blocklist !== null) io.out(`blocklist: ${result.blocklist.source} (entry ${result.blocklist.entry})`);
    if (result.approval !== null) io.out(`approval:  ${result.approval.id} by ${result.approval.approver}, until ${result.approval.expires}`);
    if (result.forbidden_class !== null) io.out(`forbidden: ${result.forbidden_class}`);
    if (!result.addresses_checked && result.verdict !== 'deny') io.out('note:      the name is vetted when Sluice resolves it; a forbidden address would still be refused');
    return result.verdict === 'deny' ? EXIT.failed : EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice explain', error);
  }
}

async function mode(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: ADMIN_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return usageFailure(io, 'sluice mode', error, MODE_USAGE);
  }
  const [agent, wanted, ...extra] = parsed.positionals;
  if (agent === undefined || (wanted !== 'learn' && wanted !== 'strict') || extra.length > 0) return usageFailure(io, 'sluice mode', 'expected AGENT learn|strict', MODE_USAGE);
  try {
    await adminCall(await adminTarget(parsed.values, io), 'PUT', `/v1/agents/${encodeURIComponent(agent)}/mode`, { mode: wanted });
    io.err(`sluice mode: ${agent} is now in ${wanted} mode`);
    return EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice mode', error);
  }
}

export const explainCommand: Command = { usage: EXPLAIN_USAGE, run: explain };
export const modeCommand: Command = { usage: MODE_USAGE, run: mode };
