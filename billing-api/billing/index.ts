/**
 * Billing (issue 5): running charges, consumption, billing runs, bills, adjustments, estimation.
 * `createBilling()` assembles the services from their side effects (pool, logger, clock); the process
 * assembly (common/stack.ts) hands the running-charges store to the gateway's onCommitted hook and the
 * billing service to the scheduled job. See ../README.md, section Billing.
 */
import type { Pool } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { BillingService, type BillsClosedCounter } from './billing.service.js';
import { ConsumptionService } from './consumption.service.js';
import { OpenCycleStore, RunningChargesService } from './running-charges.js';
import { TariffCatalog } from './tariff-catalog.js';

export { startBillingJob, nodeCronScheduler, type Scheduler, type ScheduledJob } from './billing.job.js';
export type { BillingService, BillsClosedCounter } from './billing.service.js';
export type { OpenCycleStore } from './running-charges.js';

export interface BillingComponents {
  tariffs: TariffCatalog;
  service: BillingService;
  running: RunningChargesService;
  consumption: ConsumptionService;
  /** feed with the gateway's onCommitted when `live` */
  store: OpenCycleStore;
}

export interface BillingSetup {
  graceDays: number;
  /** true when this process's gateway calls store.onCommitted for every commit */
  live: boolean;
  cacheMeters: number;
  clock?: () => number;
  /** `bills_closed_total{trigger}` (see BillingOptions.billsClosed); unset: not counted */
  billsClosed?: BillsClosedCounter;
}

export function createBilling(pool: Pool, log: Logger, setup: BillingSetup): BillingComponents {
  const clock = setup.clock ?? Date.now;
  const tariffs = new TariffCatalog(pool);
  const store = new OpenCycleStore(pool, { capacity: setup.cacheMeters, live: setup.live });
  return {
    tariffs,
    store,
    service: new BillingService(pool, tariffs, log.child({ component: 'billing' }), { graceDays: setup.graceDays, clock, billsClosed: setup.billsClosed }),
    running: new RunningChargesService(pool, tariffs, store, clock),
    consumption: new ConsumptionService(pool, tariffs),
  };
}
