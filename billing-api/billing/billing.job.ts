/**
 * The scheduled billing run: on the configured cron schedule (BILLING_CRON, in BILLING_CRON_TZ), call
 * `closeCycles(clock())` — the same service as POST /v1/billing-runs. Wiring only: the scheduler and the
 * clock are injected (node-cron and Date.now in production, fakes in tests), and every rule lives in the
 * service.
 */
import cron from 'node-cron';
import type { Logger } from '../../common/logger.js';

export interface ScheduledJob {
  stop(): void | Promise<void>;
}

/** Runs `task` on a cron expression in an IANA time zone. */
export interface Scheduler {
  schedule(expression: string, timezone: string, task: () => Promise<void>): ScheduledJob;
}

/** node-cron; overlapping executions are skipped (a run still going when the next is due). */
export const nodeCronScheduler: Scheduler = {
  schedule(expression, timezone, task) {
    return cron.schedule(expression, task, { timezone, noOverlap: true, name: 'billing-run' });
  },
};

export interface BillingJobOptions {
  scheduler: Scheduler;
  clock: () => number;
  expression: string;
  timezone: string;
  closeCycles: (asOf: number, trigger: 'schedule') => Promise<unknown>;
  log: Logger;
}

export function startBillingJob(opts: BillingJobOptions): ScheduledJob {
  const job = opts.scheduler.schedule(opts.expression, opts.timezone, async () => {
    try {
      await opts.closeCycles(opts.clock(), 'schedule');
    } catch (err) {
      opts.log.error({ err }, 'scheduled billing run failed');
    }
  });
  opts.log.info({ schedule: opts.expression, timezone: opts.timezone }, 'billing runs scheduled');
  return job;
}
