/**
 * What billing-api offers the composition root: `createBillingApi(pool, log, options)` builds the services,
 * `buildApp({ services, log, metrics, readiness, ... })` the HTTP application (it never listens),
 * `ensureAdminToken` the bootstrap admin token, `startBillingJob` the scheduled billing run.
 */
export { buildApp, type AppDeps } from './app.js';
export { createBillingApi, type BillingApiOptions, type BillingApiServices } from './services.js';
export { ensureAdminToken, type AdminTokenResult } from './provisioning/admin-token.js';
export { nodeCronScheduler, startBillingJob, type ScheduledJob, type Scheduler } from './billing/billing.job.js';
export type { ReadinessCheck } from './http/health.routes.js';
export type { BillsClosedCounter } from './billing/billing.service.js';
export type { OpenCycleStore } from './billing/running-charges.js';
