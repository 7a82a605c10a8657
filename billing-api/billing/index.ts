/**
 * Transitional: the billing components in the shape common/stack.ts, app/ and test/support still use.
 * New callers use `createBillingApi` (../services.ts, exported by ../index.ts), which builds these services
 * and the rest of the API's.
 */
import type { Pool } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { ProvisioningRepository } from '../provisioning/provisioning.repository.js';
import { ReadingsRepository } from '../readings/readings.repository.js';
import { ConsumptionService } from '../consumption/consumption.service.js';
import { BillingRepository } from './billing.repository.js';
import { BillingService, type BillsClosedCounter } from './billing.service.js';
import { OpenCycleStore, RunningChargesService } from './running-charges.js';
import { TariffsRepository } from '../tariffs/tariffs.repository.js';

export { startBillingJob, nodeCronScheduler, type Scheduler, type ScheduledJob } from './billing.job.js';
export type { BillingService, BillsClosedCounter } from './billing.service.js';
export type { OpenCycleStore } from './running-charges.js';

export interface BillingComponents {
  tariffs: TariffsRepository;
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
  const readings = new ReadingsRepository(pool);
  const billingRepository = new BillingRepository(pool);
  const tariffs = new TariffsRepository(pool);
  const store = new OpenCycleStore(readings, { capacity: setup.cacheMeters, live: setup.live });
  return {
    tariffs,
    store,
    service: new BillingService(billingRepository, readings, tariffs, log.child({ component: 'billing' }), { graceDays: setup.graceDays, clock, billsClosed: setup.billsClosed }),
    running: new RunningChargesService(billingRepository, tariffs, store, clock),
    consumption: new ConsumptionService(readings, tariffs, new ProvisioningRepository(pool)),
  };
}
