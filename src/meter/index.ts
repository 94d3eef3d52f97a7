// The metering stage's public surface: inference hosts, budgets and their journal, and the meter
// ingress hands each inference call to. Everything else in src/meter/ is an implementation detail.
export { BUDGET_STORE_FILE, BudgetStore, readStore, type StoreContents, type UsageRecord } from './budget-store.js';
export { EmbeddedBudgets, type BudgetAccounts, type Unavailable } from './budget-accounts.js';
export { RedisBudgets } from './redis-budgets.js';
export { BudgetLedger, BudgetLimits, type BudgetReport, type Plan, type PlanRequest, type Reservation, type WindowReport } from './budgets.js';
export type { AdmitVerdict, CallFacts, InferenceMetering, InferenceRefusal, MeteredCall } from './call.js';
export { InferenceHosts } from './inference-hosts.js';
export { KNOWN_INFERENCE_HOSTS } from './known-hosts.js';
export { InferenceMeter, meterFor, type MeterOptions } from './meter.js';
