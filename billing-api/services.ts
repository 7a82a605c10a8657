/**
 * billing-api's services, built from a pool: every repository once, each service given the repositories
 * it uses. The composition root calls `createBillingApi` once per process and hands the result to
 * `buildApp` (the HTTP application), to the scheduled billing run (`billing.closeCycles`) and, when this
 * process runs a gateway, the running-charges `store` to the gateway's onCommitted hook.
 */
import type { Pool } from '../common/db.js';
import type { Logger } from '../common/logger.js';
import { BillingRepository } from './billing/billing.repository.js';
import { BillingService, type BillsClosedCounter } from './billing/billing.service.js';
import { OpenCycleStore, RunningChargesService } from './billing/running-charges.js';
import { BillListRepository } from './bill-listing/bill-list.repository.js';
import { ChargesRepository } from './charges/charges.repository.js';
import { ChargesService } from './charges/charges.service.js';
import { ConsumptionService } from './consumption/consumption.service.js';
import type { TokenLookup } from './http/auth.js';
import { AuditEventsRepository } from './provisioning/audit-events.repository.js';
import { ProvisioningRepository } from './provisioning/provisioning.repository.js';
import { ProvisioningService } from './provisioning/provisioning.service.js';
import { ReadingsRepository } from './readings/readings.repository.js';
import { ReadingsService } from './readings/readings.service.js';
import { TariffsRepository } from './tariffs/tariffs.repository.js';
import { TariffsService } from './tariffs/tariffs.service.js';

export interface BillingApiOptions {
  /** scrypt cost of device secrets a client chooses (DEVICE_SECRET_SCRYPT_N) */
  scryptN: number;
  /** BILLING_GRACE_DAYS: a run closes the cycles that ended at least this long before its asOf */
  graceDays: number;
  /** true when this process's gateway calls `store.onCommitted` for every commit (running charges from memory) */
  live: boolean;
  /** RUNNING_CHARGES_CACHE_METERS: meters whose open cycle the store holds at most */
  cacheMeters: number;
  clock?: () => number;
  /** `bills_closed_total{trigger}` (common/metrics.ts); unset: not counted */
  billsClosed?: BillsClosedCounter;
}

export interface BillingApiServices {
  provisioning: ProvisioningService;
  /** who a bearer token is (authentication) */
  tokens: TokenLookup;
  readings: ReadingsService;
  tariffs: TariffsService;
  charges: ChargesService;
  billing: BillingService;
  running: RunningChargesService;
  consumption: ConsumptionService;
  /** bills across accounts (GET /v1/bills) */
  billList: BillListRepository;
  /** the open cycles of running charges: feed it the gateway's commits (`onCommitted`) when `live` */
  store: OpenCycleStore;
}

export function createBillingApi(pool: Pool, log: Logger, options: BillingApiOptions): BillingApiServices {
  return assemble(pool, log, options, new TariffsRepository(pool));
}

/** The services around one tariff repository: one cache of tariff versions for charges, billing and consumption. */
function assemble(pool: Pool, log: Logger, options: BillingApiOptions, tariffs: TariffsRepository): BillingApiServices {
  const clock = options.clock ?? Date.now;
  const provisioningRepository = new ProvisioningRepository(pool);
  const audit = new AuditEventsRepository(pool);
  const readingsRepository = new ReadingsRepository(pool);
  const billingRepository = new BillingRepository(pool);
  const store = new OpenCycleStore(readingsRepository, { capacity: options.cacheMeters, live: options.live });
  return {
    provisioning: new ProvisioningService(provisioningRepository, options.scryptN, audit),
    tokens: provisioningRepository,
    readings: new ReadingsService(readingsRepository, provisioningRepository),
    tariffs: new TariffsService(tariffs, provisioningRepository, audit, clock),
    charges: new ChargesService(new ChargesRepository(pool), tariffs),
    billing: new BillingService(billingRepository, readingsRepository, tariffs, log.child({ component: 'billing' }), {
      graceDays: options.graceDays,
      clock,
      billsClosed: options.billsClosed,
    }),
    running: new RunningChargesService(billingRepository, tariffs, store, clock),
    consumption: new ConsumptionService(readingsRepository, tariffs, provisioningRepository),
    billList: new BillListRepository(pool),
    store,
  };
}
