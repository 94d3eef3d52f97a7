// What the primary and its proxy workers say to each other over the cluster IPC channel
// (workers: N): calls that wait for a reply, and one-way notices.
import type { Agent, Mode } from '../agent.js';
import type { AppendUrgency, AuditEntry } from '../audit/kinds.js';
import type { AuditRecord } from '../audit/record.js';
import type { ErrorCode } from '../errors.js';
import type { LimitOutcome } from '../ingress/agent-limits.js';
import type { Plan, PlanRequest, Reservation, Unavailable, UsageRecord } from '../meter/index.js';
import type { WorkerMetrics } from '../obs/metrics.js';
import type { AccessRequest } from '../policy/access-requests.js';
import type { Approval } from '../policy/approvals.js';
import type { LearnRecord } from '../policy/learn-store.js';

/** A worker asks the primary, which owns the one copy of each. */
export type WorkerCall =
  /** the approvals and agent modes in force, asked once before listening */
  | { readonly op: 'state' }
  | { readonly op: 'audit'; readonly entry: AuditEntry; readonly urgency: AppendUrgency }
  | { readonly op: 'ask_access'; readonly agent: Agent; readonly host: string; readonly port: number }
  | { readonly op: 'admit'; readonly agent: string }
  /** reserve against the one set of budget accounts (this host's journal, or a fleet's Redis) */
  | { readonly op: 'plan'; readonly request: PlanRequest }
  /** settle a call: answered once the usage is durable */
  | { readonly op: 'settle'; readonly reservation: TicketedReservation; readonly record: UsageRecord };

/** A reservation the primary holds for a worker, by ticket: a worker that dies is charged it. */
export type TicketedReservation = Reservation & { readonly ticket: number };
export type TicketedPlan = Exclude<Plan, { kind: 'go' }> | Unavailable | (Extract<Plan, { kind: 'go' }> & { readonly reservation: TicketedReservation });

/** A limit slot crosses the channel as a number; the worker hands it back to release it. */
export type RemoteLimitOutcome = Exclude<LimitOutcome, { admitted: true }> | { readonly admitted: true; readonly slot: number };

export interface WorkerReplies {
  readonly state: { readonly approvals: readonly Approval[]; readonly modes: Readonly<Record<string, Mode>> };
  readonly audit: AuditRecord;
  readonly ask_access: AccessRequest | null;
  readonly admit: RemoteLimitOutcome;
  readonly plan: TicketedPlan;
  readonly settle: null;
  readonly metrics: WorkerMetrics;
}

export type WorkerNotice =
  | { readonly op: 'learn'; readonly record: LearnRecord }
  | { readonly op: 'approval_used'; readonly approval: string; readonly requestId: string }
  | { readonly op: 'release'; readonly slot: number }
  /** every listener is open: the worker takes traffic */
  | { readonly op: 'listening'; readonly proxy: { readonly address: string; readonly family: string; readonly port: number } };

/** The primary asks a worker (for /metrics). */
export type PrimaryCall = { readonly op: 'metrics' };

export type PrimaryNotice =
  /** the approvals in force, sent whole at every change and when a worker starts */
  | { readonly op: 'approvals'; readonly approvals: readonly Approval[] }
  | { readonly op: 'cut'; readonly approval: string }
  /** every agent's mode in force (the run-time switch, else the config's) */
  | { readonly op: 'modes'; readonly modes: Readonly<Record<string, Mode>> }
  /** a human denied an access request: requests held for it stop waiting */
  | { readonly op: 'denied'; readonly agent: string; readonly host: string; readonly port: number }
  /** SIGHUP: re-read rule files and blocklist copies */
  | { readonly op: 'reload' }
  /** the primary swapped its blocklists (a feed refreshed): read the new copies */
  | { readonly op: 'blocklists' }
  /** stop accepting, let requests in flight finish until the deadline, then exit */
  | { readonly op: 'stop'; readonly drainMs: number };

export interface CallMessage<C> {
  readonly type: 'call';
  readonly id: number;
  readonly call: C;
}

export interface NoticeMessage<N> {
  readonly type: 'notice';
  readonly notice: N;
}

export type ReplyMessage =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly code: ErrorCode; readonly message: string };

/** What one turn of the event loop sent, in order: one write and one wake-up for many messages. */
export interface BatchMessage<C, N> {
  readonly type: 'batch';
  readonly messages: readonly (CallMessage<C> | NoticeMessage<N> | ReplyMessage)[];
}

export type Message<C, N> = CallMessage<C> | NoticeMessage<N> | ReplyMessage | BatchMessage<C, N>;

/** Messages on the channel that are not ours (Node's own cluster traffic has a `cmd`). */
export function isClusterMessage<C, N>(value: unknown): value is Message<C, N> {
  if (value === null || typeof value !== 'object') return false;
  const type = (value as { type?: unknown }).type;
  return type === 'call' || type === 'notice' || type === 'reply' || type === 'batch';
}
