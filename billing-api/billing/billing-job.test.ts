/**
 * The scheduled billing run: wiring only, driven by an injected scheduler and clock (and node-cron itself
 * under fake timers), never by waiting; its configuration; and its place in the process assembly.
 */
import type { ScheduledTask } from 'node-cron';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack } from '../../test/support/stack.js';
import { nodeCronScheduler, startBillingJob, type Scheduler } from './billing.job.js';

const log = createLogger('silent');

function fakeScheduler() {
  const scheduled: { expression: string; timezone: string; task: () => Promise<void>; stopped: boolean }[] = [];
  const scheduler: Scheduler = {
    schedule(expression, timezone, task) {
      const entry = { expression, timezone, task, stopped: false };
      scheduled.push(entry);
      return { stop: () => void (entry.stopped = true) };
    },
  };
  return { scheduler, scheduled };
}

describe('billing job wiring', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('schedules the configured expression in the configured zone and calls closeCycles(clock()) when it fires', async () => {
    const { scheduler, scheduled } = fakeScheduler();
    const calls: [number, string][] = [];
    const job = startBillingJob({
      scheduler,
      clock: () => Date.parse('2026-04-04T00:15:00Z'),
      expression: '15 0 * * *',
      timezone: 'Europe/London',
      closeCycles: async (asOf, trigger) => void calls.push([asOf, trigger]),
      log,
    });
    expect(scheduled.map(({ expression, timezone }) => [expression, timezone])).toEqual([['15 0 * * *', 'Europe/London']]);
    expect(calls).toEqual([]);
    await scheduled[0].task();
    expect(calls).toEqual([[Date.parse('2026-04-04T00:15:00Z'), 'schedule']]);
    job.stop();
    expect(scheduled[0].stopped).toBe(true);
  });

  it('names each account the scheduled run could not bill, with its cycle and reason, in the log', async () => {
    const { scheduler, scheduled } = fakeScheduler();
    const warn = vi.fn();
    startBillingJob({
      scheduler,
      clock: () => 0,
      expression: '15 0 * * *',
      timezone: 'UTC',
      closeCycles: async () => ({
        id: 'run_1',
        failureCount: 2,
        failures: [
          { accountId: 'ACC-7', cycle: { from: '2026-10-01T07:00:00Z', to: '2026-11-01T07:00:00Z' }, code: 'no_tariff_in_effect' },
          { accountId: 'ACC-9', cycle: null, code: 'internal' },
        ],
      }),
      log: { ...log, info: () => undefined, warn, error: () => undefined } as unknown as typeof log,
    });
    await scheduled[0].task();
    expect(warn).toHaveBeenCalledTimes(1);
    const [fields, message] = warn.mock.calls[0];
    expect(fields).toMatchObject({ billingRun: 'run_1', failureCount: 2 });
    expect(message).toBe('scheduled billing run: 2 account(s) not billed: ACC-7 (cycle from 2026-10-01T07:00:00Z): no_tariff_in_effect; ACC-9 (cycle from none): internal');
  });

  it('a failing run is logged, never thrown into the scheduler', async () => {
    const { scheduler, scheduled } = fakeScheduler();
    const error = vi.fn();
    startBillingJob({
      scheduler,
      clock: () => 0,
      expression: '15 0 * * *',
      timezone: 'UTC',
      closeCycles: async () => {
        throw new Error('database down');
      },
      log: { ...log, info: () => {}, error } as never,
    });
    await expect(scheduled[0].task()).resolves.toBeUndefined();
    expect(error).toHaveBeenCalledWith(expect.objectContaining({ err: expect.any(Error) }), 'scheduled billing run failed');
  });

  it('with node-cron, fires at 00:15 local time in the configured zone (fake clock: 8 March 2026, the US DST day)', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-03-08T08:00:00Z'), toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const calls: number[] = [];
    const job = startBillingJob({
      scheduler: nodeCronScheduler,
      clock: () => Date.now(),
      expression: '15 0 * * *',
      timezone: 'America/Los_Angeles',
      closeCycles: async (asOf) => void calls.push(asOf),
      log,
    });
    try {
      await vi.advanceTimersByTimeAsync(14 * 60_000); // 08:14Z = 00:14 PST
      expect(calls).toEqual([]);
      await vi.advanceTimersByTimeAsync(2 * 60_000); // past 00:15 PST
      expect(calls).toHaveLength(1);
      expect(Math.floor(calls[0] / 60_000) * 60_000).toBe(Date.parse('2026-03-08T08:15:00Z'));
      // The next day 00:15 is PDT: 07:15Z.
      await vi.advanceTimersByTimeAsync(Date.parse('2026-03-09T07:16:00Z') - Date.now());
      expect(calls).toHaveLength(2);
      expect(Math.floor(calls[1] / 60_000) * 60_000).toBe(Date.parse('2026-03-09T07:15:00Z'));
    } finally {
      await job.stop();
    }
  });
});

describe('billing configuration', () => {
  it('defaults: daily at 00:15 UTC, 3 days of grace, running charges from memory', () => {
    expect(loadConfig({})).toMatchObject({
      BILLING_CRON: '15 0 * * *',
      BILLING_CRON_TZ: 'UTC',
      BILLING_GRACE_DAYS: 3,
      RUNNING_CHARGES_SOURCE: 'auto',
      RUNNING_CHARGES_CACHE_METERS: 10_000,
    });
    expect(loadConfig({ BILLING_CRON: 'off', BILLING_CRON_TZ: 'Europe/London', BILLING_GRACE_DAYS: '0' })).toMatchObject({ BILLING_CRON: 'off', BILLING_CRON_TZ: 'Europe/London', BILLING_GRACE_DAYS: 0 });
  });

  it('lists every bad billing variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({ BILLING_CRON: 'every night', BILLING_CRON_TZ: 'Mars/Olympus', BILLING_GRACE_DAYS: '-1', RUNNING_CHARGES_SOURCE: 'memory', RUNNING_CHARGES_CACHE_METERS: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.split('=')[0]).sort()).toEqual([
      'BILLING_CRON', 'BILLING_CRON_TZ', 'BILLING_GRACE_DAYS', 'RUNNING_CHARGES_CACHE_METERS', 'RUNNING_CHARGES_SOURCE',
    ]);
  });
});

describe('billing job in the process assembly', () => {
  const mode = storageModes()[0];

  it('starts with the API, on the configured schedule and zone, and BILLING_CRON=off leaves it out', async () => {
    const on = await startTestStack(mode, { BILLING_CRON: '30 2 * * *', BILLING_CRON_TZ: 'America/Los_Angeles', BILLING_GRACE_DAYS: '5' });
    try {
      const task = on.billingJob as ScheduledTask;
      expect(task.getPattern()).toBe('30 2 * * *');
      const next = task.getNextRun()!;
      // 02:30 in Los Angeles is 09:30Z (PDT) or 10:30Z (PST).
      expect(['09:30', '10:30']).toContain(next.toISOString().slice(11, 16));
      expect(on.services!.billing.graceDays).toBe(5);
      expect(on.services!.store.opts.live).toBe(true);
    } finally {
      await on.close();
    }
    const off = await startTestStack(mode, { BILLING_CRON: 'off', RUNNING_CHARGES_SOURCE: 'database' });
    try {
      expect(off.billingJob).toBeNull();
      expect(off.services!.store.opts.live).toBe(false);
    } finally {
      await off.close();
    }
  });
});
