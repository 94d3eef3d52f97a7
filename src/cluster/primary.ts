// The primary of a cluster (workers: N): keeps the one audit chain and the shared state, serves
// the admin API, forks the proxy workers, restarts one that dies, and stops them all in order.
import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { Sluice, type WorkerBroadcast } from '../app.js';
import { workerExitEntry } from '../audit/kinds.js';
import type { LoadedConfig } from '../config/load.js';
import type { ConfigFile } from '../config/schema.js';
import { SluiceError } from '../errors.js';
import type { PlanRequest, Reservation } from '../meter/index.js';
import type { Logger } from '../obs/log.js';
import type { WorkerMetrics } from '../obs/metrics.js';
import type { Approval } from '../policy/approvals.js';
import { Endpoint } from './endpoint.js';
import type { PrimaryCall, PrimaryNotice, RemoteLimitOutcome, TicketedPlan, WorkerCall, WorkerNotice, WorkerReplies } from './messages.js';

/**
 * How long the workers get to finish the requests in flight after SIGTERM before their last
 * connections are cut: inside systemd's TimeoutStopSec=15s with room for the primary's own stop
 * (the stop record and the shutdown checkpoint).
 */
export const DRAIN_MS = 10_000;
/** a worker that ends before it listened is started again only after this pause (no tight crash loop) */
const FAILED_START_PAUSE_MS = 1_000;

type ToWorker = Endpoint<PrimaryCall, PrimaryNotice, WorkerCall, WorkerNotice, Record<PrimaryCall['op'], unknown>>;

interface Member {
  readonly worker: Worker;
  readonly endpoint: ToWorker;
  /** agent-limit slots this worker holds, released if it dies holding them */
  readonly slots: Map<number, () => void>;
  /** budget reservations made for its calls and not settled yet, by ticket */
  readonly reservations: Map<number, { readonly agent: string; readonly reservation: Reservation }>;
  /** it asked for the state in force: from then on every change is sent to it (before, it has no ear for them) */
  subscribed: boolean;
  listening: boolean;
}

/** workers: auto is one per core the process may use; 1 means no cluster at all. */
export function workerCount(config: Pick<ConfigFile, 'workers'>): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

export class SluiceCluster {
  readonly #members = new Map<number, Member>();
  #approvals: readonly Approval[] = [];
  #nextSlot = 0;
  #nextTicket = 0;
  #stopping = false;
  #sluice: Sluice | undefined;

  private constructor(
    private readonly count: number,
    private readonly log: Logger,
  ) {}

  /** Starts the shared state and the admin API, then the workers; resolves once every worker listens. */
  static async start(loaded: LoadedConfig, log: Logger, count: number): Promise<SluiceCluster> {
    const running = new SluiceCluster(count, log);
    // Advanced serialisation: audit entries and Learn records carry Dates and nested values as they are.
    cluster.setupPrimary({ serialization: 'advanced' });
    const sluice = await Sluice.start(loaded, { log, primary: running.#broadcast() });
    running.#sluice = sluice;
    sluice.metrics.gatherWorkers(() => running.#workerMetrics());
    try {
      const first = await running.#startWorkers();
      await sluice.announce(first, { workers: count, worker_pids: [...running.#members.values()].map((member) => member.worker.process.pid) });
    } catch (error) {
      await running.close();
      throw error;
    }
    return running;
  }

  /** SIGHUP: the primary re-reads rules and blocklists (and audits the outcome once), then every worker does. */
  async reload(): Promise<void> {
    await this.#running().reload();
    this.#tell({ op: 'reload' });
  }

  /** SIGTERM: workers drain (up to DRAIN_MS) and exit; then the primary records the stop and signs the chain. */
  async close(): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#members.values()].map((member) => new Promise<void>((resolve) => {
      if (member.worker.isDead()) resolve();
      else member.worker.once('exit', () => resolve());
    }));
    this.#tell({ op: 'stop', drainMs: DRAIN_MS });
    // One still starting has taken no traffic and cannot hear the stop yet.
    for (const member of this.#members.values()) if (!member.subscribed) member.worker.process.kill('SIGKILL');
    const deadline = setTimeout(() => {
      for (const member of this.#members.values()) member.worker.process.kill('SIGKILL');
    }, DRAIN_MS + 2_000);
    await Promise.all(exits);
    clearTimeout(deadline);
    await this.#sluice?.close();
  }

  #running(): Sluice {
    if (this.#sluice === undefined) throw new SluiceError('INTERNAL', 'the cluster is not started');
    return this.#sluice;
  }

  #broadcast(): WorkerBroadcast {
    return {
      approvals: (index) => {
        this.#approvals = index.all;
        this.#tell({ op: 'approvals', approvals: index.all });
      },
      cut: (approval) => this.#tell({ op: 'cut', approval }),
      modes: (modes) => this.#tell({ op: 'modes', modes }),
      denied: (request) => this.#tell({ op: 'denied', agent: request.agent, host: request.host, port: request.port }),
      blocklists: () => this.#tell({ op: 'blocklists' }),
    };
  }

  #tell(notice: PrimaryNotice): void {
    for (const member of this.#members.values()) if (member.subscribed) member.endpoint.notify(notice);
  }

  /** Forks the workers and waits until each listens; one that ends first fails the start. */
  #startWorkers(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      let listening = 0;
      for (let index = 0; index < this.count; index += 1) {
        this.#fork({
          onListening: (address) => {
            listening += 1;
            if (listening === this.count) resolve(address);
          },
          onEarlyExit: (code) => reject(new SluiceError('INTERNAL', `a proxy worker exited with code ${code} before it listened`)),
        });
      }
    });
  }

  #fork(start: { onListening: (address: AddressInfo) => void; onEarlyExit: (code: number | null) => void } | null): Member {
    const worker = cluster.fork();
    const slots = new Map<number, () => void>();
    const endpoint: ToWorker = new Endpoint(worker, {
      serve: (call) => {
        if (call.op === 'state') member.subscribed = true;
        return this.#serve(member, call);
      },
      hear: (notice) => {
        if (notice.op === 'listening') {
          member.listening = true;
          start?.onListening(notice.proxy);
          return;
        }
        this.#hear(member, notice);
      },
    });
    const member: Member = { worker, endpoint, slots, reservations: new Map(), subscribed: false, listening: false };
    this.#members.set(worker.id, member);
    worker.on('message', (message: unknown) => endpoint.receive(message));
    // A reply to a worker that just died fails to send: its exit is handled below, not as a crash.
    worker.on('error', (error) => this.log.debug({ err: error, worker: worker.id }, 'message to a worker not delivered'));
    worker.once('exit', (code, signal) => this.#exited(member, code, signal, start));
    return member;
  }

  #exited(member: Member, code: number | null, signal: string | null, start: { onEarlyExit: (code: number | null) => void } | null): void {
    const { worker } = member;
    this.#members.delete(worker.id);
    member.endpoint.close(new SluiceError('INTERNAL', `worker ${worker.id} exited`));
    // Its requests ended with it: the concurrency slots they held are free again.
    for (const release of member.slots.values()) release();
    this.#chargeAbandoned(member);
    if (this.#stopping) return;
    if (start !== null && !member.listening) {
      start.onEarlyExit(code);
      return;
    }
    const pid = worker.process.pid ?? 0;
    const restart = (): void => {
      if (this.#stopping) return;
      const replacement = this.#fork(null);
      this.#running().metrics.workerRestarts.inc();
      this.log.error({ worker: worker.id, pid, code, signal, replaced_by: replacement.worker.id }, 'proxy worker exited; started another');
      this.#running().primaryState.audit
        .append(workerExitEntry({ worker: worker.id, pid, code, signal, replaced_by: replacement.worker.id }))
        .catch((error: unknown) => this.log.error({ err: error }, 'could not record a worker exit'));
    };
    if (member.listening) restart();
    else setTimeout(restart, FAILED_START_PAUSE_MS).unref();
  }

  #serve(member: Member, call: WorkerCall): Promise<WorkerReplies[WorkerCall['op']]> | WorkerReplies[WorkerCall['op']] {
    const shared = this.#running().primaryState;
    const { slots } = member;
    switch (call.op) {
      case 'audit':
        return shared.audit.append(call.entry, call.urgency);
      case 'state':
        return { approvals: this.#approvals, modes: shared.modes.effective() };
      case 'ask_access':
        return shared.requests.record(call.agent, call.host, call.port);
      case 'admit':
        return shared.agentLimits.admit(call.agent).then((outcome): RemoteLimitOutcome => {
          if (!outcome.admitted) return outcome;
          this.#nextSlot += 1;
          const slot = this.#nextSlot;
          slots.set(slot, outcome.release);
          return { admitted: true, slot };
        });
      case 'plan':
        return this.#plan(member, call.request);
      case 'settle':
        member.reservations.delete(call.reservation.ticket);
        return shared.budgets.settle(call.reservation, call.record).then(() => null);
    }
  }

  #hear(member: Member, notice: Exclude<WorkerNotice, { op: 'listening' }>): void {
    const shared = this.#running().primaryState;
    const { slots } = member;
    switch (notice.op) {
      case 'learn':
        shared.learn.record(notice.record);
        return;
      case 'approval_used':
        shared.approvals.noteUse(notice.approval, notice.requestId);
        return;
      case 'release':
        slots.get(notice.slot)?.();
        slots.delete(notice.slot);
        return;
    }
  }

  async #plan(member: Member, request: PlanRequest): Promise<TicketedPlan> {
    const plan = await this.#running().primaryState.budgets.plan(request);
    if (plan.kind !== 'go') return plan;
    this.#nextTicket += 1;
    const reservation = { ...plan.reservation, ticket: this.#nextTicket };
    member.reservations.set(reservation.ticket, { agent: request.agent.name, reservation });
    return { ...plan, reservation };
  }

  /** A dead worker's calls in flight are charged their whole reservation, journal first, as an abandoned call is. */
  #chargeAbandoned(member: Member): void {
    const { budgets } = this.#running().primaryState;
    for (const { agent, reservation } of member.reservations.values()) {
      budgets
        .settle(reservation, { at: Date.now(), request_id: `worker-${member.worker.id}-exit`, agent, subjects: reservation.subjects, model: 'unknown', input: 0, output: reservation.tokens, estimated: true })
        .catch((error: unknown) => this.log.error({ err: error }, 'budget settlement of a dead worker\'s calls failed; see the budget store failure'));
    }
    member.reservations.clear();
  }

  async #workerMetrics(): Promise<WorkerMetrics[]> {
    const ready = [...this.#members.values()].filter((member) => member.subscribed);
    const asked = await Promise.allSettled(ready.map((member) => member.endpoint.call({ op: 'metrics' })));
    // A worker that died mid-scrape is left out of this one: its replacement shows in the next.
    return asked.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value as WorkerMetrics] : []));
  }
}
