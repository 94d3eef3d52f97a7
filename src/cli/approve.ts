// `sluice approve`, `sluice approvals list` and `sluice revoke`: time-boxed approvals granted
// through the running Sluice's admin API, which audits them under the token's name.
import { parseArgs } from 'node:util';
import { ADMIN_OPTIONS, ADMIN_OPTIONS_HELP, adminCall, adminFailure, adminTarget, durationOption } from './admin-client.js';
import { table } from './table.js';
import type { CliIo, Command } from './command.js';
import { EXIT, usageFailure } from './exit.js';

const APPROVE_USAGE = `Usage: sluice approve --agent AGENT --host HOST [--port PORT] --for DURATION --reason TEXT [--ticket ID] [--override-blocklist]
       sluice approve --request ID --for DURATION --reason TEXT [--ticket ID] [--override-blocklist]

Lets AGENT reach HOST (on PORT, or every port) until DURATION has passed (2h, 90m, 1h30m; at most
approvals.max_ttl_ms), even where Strict mode would refuse it; with --request, exactly what access
request ID (\`sluice requests list\`) asked for, and requests held for it proceed. Deny rules, blocklists and forbidden
addresses still apply; --override-blocklist passes a blocklist and needs an admin token. Prints
the approval's id (for \`sluice revoke\`) on the last line.

Options:
      --request ID         grant what this access request asked for (instead of --agent/--host/--port)
      --agent AGENT        a configured agent's name
      --host HOST          the destination host name or IP address
      --port PORT          only this port (default: every port)
      --for DURATION       how long it lasts
      --reason TEXT        why: recorded in the audit log
      --ticket ID          a change or ticket reference, recorded with it
      --override-blocklist let it pass a blocklisted host (admin role)
${ADMIN_OPTIONS_HELP}
  -h, --help               this help`;

const LIST_USAGE = `Usage: sluice approvals list [--config FILE] [--token-file FILE]

Prints the approvals in force: id, agent, host, port, expiry, approver and reason.

Options:
${ADMIN_OPTIONS_HELP}
  -h, --help            this help`;

const REVOKE_USAGE = `Usage: sluice revoke ID [--config FILE] [--token-file FILE]

Ends approval ID at once; tunnels it let through are closed.

Options:
${ADMIN_OPTIONS_HELP}
  -h, --help            this help`;

async function approve(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        ...ADMIN_OPTIONS,
        request: { type: 'string' },
        agent: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        for: { type: 'string' },
        reason: { type: 'string' },
        ticket: { type: 'string' },
        'override-blocklist': { type: 'boolean' },
      },
      strict: true,
    });
  } catch (error) {
    return usageFailure(io, 'sluice approve', error, APPROVE_USAGE);
  }
  const { values } = parsed;
  const byRequest = values.request !== undefined;
  if (byRequest && (values.agent !== undefined || values.host !== undefined || values.port !== undefined)) {
    return usageFailure(io, 'sluice approve', '--request names the agent, host and port itself; drop --agent, --host and --port', APPROVE_USAGE);
  }
  const required: readonly ('agent' | 'host' | 'for' | 'reason')[] = byRequest ? ['for', 'reason'] : ['agent', 'host', 'for', 'reason'];
  const missing = required.filter((name) => values[name] === undefined);
  if (missing.length > 0) return usageFailure(io, 'sluice approve', `missing ${missing.map((name) => `--${name}`).join(', ')}`, APPROVE_USAGE);
  try {
    const target = await adminTarget(values, io);
    const reply = await adminCall(target, 'POST', '/v1/approvals', {
      ...(byRequest ? { request: values.request } : { agent: values.agent, host: values.host }),
      ...(values.port === undefined ? {} : { port: values.port }),
      ttl_ms: durationOption('for', values.for ?? ''),
      reason: values.reason,
      ...(values.ticket === undefined ? {} : { ticket: values.ticket }),
      ...(values['override-blocklist'] === true ? { override_blocklist: true } : {}),
    });
    const approval = reply.body['approval'] as { id: string; agent: string; host: string; port: number | null; expires: string };
    for (const warning of (reply.body['warnings'] ?? []) as string[]) io.err(`sluice approve: warning: ${warning}`);
    io.err(`sluice approve: ${approval.agent} may reach ${approval.host}:${approval.port ?? '*'} until ${approval.expires}`);
    io.out(approval.id);
    return EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice approve', error);
  }
}

async function list(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: ADMIN_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return usageFailure(io, 'sluice approvals', error, LIST_USAGE);
  }
  if (parsed.positionals.length !== 1 || parsed.positionals[0] !== 'list') return usageFailure(io, 'sluice approvals', 'expected "list"', LIST_USAGE);
  try {
    const reply = await adminCall(await adminTarget(parsed.values, io), 'GET', '/v1/approvals');
    const approvals = reply.body['approvals'] as { id: string; agent: string; host: string; port: number | null; expires: string; approver: string; reason: string }[];
    if (approvals.length === 0) {
      io.err('sluice approvals: none in force');
      return EXIT.ok;
    }
    const rows = approvals.map((entry) => [entry.id, entry.agent, entry.host, entry.port === null ? '*' : String(entry.port), entry.expires, entry.approver, entry.reason]);
    for (const line of table([['ID', 'AGENT', 'HOST', 'PORT', 'EXPIRES', 'APPROVER', 'REASON'], ...rows])) io.out(line);
    return EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice approvals', error);
  }
}

async function revoke(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: ADMIN_OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    return usageFailure(io, 'sluice revoke', error, REVOKE_USAGE);
  }
  const [id, ...extra] = parsed.positionals;
  if (id === undefined || extra.length > 0) return usageFailure(io, 'sluice revoke', 'name exactly one approval id', REVOKE_USAGE);
  try {
    await adminCall(await adminTarget(parsed.values, io), 'DELETE', `/v1/approvals/${encodeURIComponent(id)}`);
    io.err(`sluice revoke: ${id} revoked`);
    return EXIT.ok;
  } catch (error) {
    return adminFailure(io, 'sluice revoke', error);
  }
}

export const approveCommand: Command = { usage: APPROVE_USAGE, run: approve };
export const approvalsCommand: Command = { usage: LIST_USAGE, run: list };
export const revokeCommand: Command = { usage: REVOKE_USAGE, run: revoke };
