// Where budgets are kept, as metering sees it: decide and reserve a call, settle it, report. The
// embedded accounts are this process's ledger and its fsynced journal; a fleet shares them in Redis.
import { join } from 'node:path';
import type { BudgetConfig } from '../config/schema.js';
import type { Logger } from '../obs/log.js';
import { BUDGET_STORE_FILE, BudgetStore, type UsageRecord } from './budget-store.js';
import { BudgetLedger, type BudgetLimits, type BudgetReport, type Plan, type PlanRequest, type Reservation } from './budgets.js';

/** Why no call can be decided now: the journal cannot be trusted, or the shared store cannot be reached. */
export interface Unavailable {
  readonly kind: 'unavailable';
  readonly code: 'BUDGET_STORE_UNUSABLE' | 'BUDGET_STORE_UNREACHABLE';
  readonly reason: string;
}

export interface BudgetAccounts {
  readonly limits: BudgetLimits;
  /** why every inference call is refused now, else null */
  readonly failure: Unavailable | null;
  /** decides a call and, when it goes, holds its reservation until settle */
  plan(request: PlanRequest): Promise<Plan | Unavailable>;
  /** releases the reservation and counts what the call used; durable once resolved */
  settle(reservation: Reservation, record: UsageRecord): Promise<void>;
  report(): Promise<BudgetReport[]>;
  close(): Promise<void>;
}

/** One host's accounts: the in-memory ledger, replayed from and appended to the journal. */
export class EmbeddedBudgets implements BudgetAccounts {
  private constructor(
    private readonly ledger: BudgetLedger,
    private readonly store: BudgetStore,
  ) {}

  /**
   * Reads the journal in `stateDir` before any call: a damaged one is kept as is and every
   * inference call refused until an operator acts (never reset behind their back).
   */
  static async open(stateDir: string, budgets: readonly BudgetConfig[], now: () => number, log: Logger): Promise<EmbeddedBudgets> {
    const { store, contents } = await BudgetStore.open(join(stateDir, BUDGET_STORE_FILE));
    if (contents.failure !== null) log.error({ failure: contents.failure }, 'inference budget store is unreadable; inference calls are refused');
    if (contents.tornBytes > 0) log.warn({ torn_bytes: contents.tornBytes }, 'inference budget store ended in a line cut short by a crash; it was never settled and was removed');
    const ledger = new BudgetLedger(budgets, now);
    ledger.load(contents.records);
    return new EmbeddedBudgets(ledger, store);
  }

  get limits(): BudgetLimits {
    return this.ledger.limits;
  }

  get failure(): Unavailable | null {
    const reason = this.store.failure;
    return reason === null ? null : { kind: 'unavailable', code: 'BUDGET_STORE_UNUSABLE', reason };
  }

  plan(request: PlanRequest): Promise<Plan | Unavailable> {
    return Promise.resolve(this.failure ?? this.ledger.plan(request));
  }

  /** Journal first: the ledger counts the call only once its line is on disk. */
  async settle(reservation: Reservation, record: UsageRecord): Promise<void> {
    await this.store.append(record);
    this.ledger.settle(reservation, record.input + record.output);
  }

  report(): Promise<BudgetReport[]> {
    return Promise.resolve(this.ledger.report());
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
