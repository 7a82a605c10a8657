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

/** What the job reads of a finished run: its failures, by account. */
export interface ScheduledRunOutcome {
  id: string;
  failureCount: number;
  failures: { accountId: string; cycle: { from: string; to: string } | null; code: string }[];
}

export interface BillingJobOptions {
  scheduler: Scheduler;
  clock: () => number;
  expression: string;
  timezone: string;
  /** the billing service's closeCycles: the run at its end (its failures are logged by account) */
  closeCycles: (asOf: number, trigger: 'schedule') => Promise<ScheduledRunOutcome | unknown>;
  log: Logger;
}

export function startBillingJob(opts: BillingJobOptions): ScheduledJob {
  const job = opts.scheduler.schedule(opts.expression, opts.timezone, async () => {
    try {
      const outcome = (await opts.closeCycles(opts.clock(), 'schedule')) as Partial<ScheduledRunOutcome> | undefined;
      const failures = outcome?.failures ?? [];
      if (failures.length) {
        const named = failures.map((f) => `${f.accountId} (cycle from ${f.cycle?.from ?? 'none'}): ${f.code}`);
        opts.log.warn(
          { billingRun: outcome?.id, failureCount: outcome?.failureCount ?? failures.length, failedAccounts: named },
          `scheduled billing run: ${outcome?.failureCount ?? failures.length} account(s) not billed: ${named.slice(0, 20).join('; ')}`,
        );
      }
    } catch (err) {
      opts.log.error({ err }, 'scheduled billing run failed');
    }
  });
  opts.log.info({ schedule: opts.expression, timezone: opts.timezone }, 'billing runs scheduled');
  return job;
}
