/**
 * Billing runs: `closeCycles(asOf)` closes every billing cycle that ended at or before asOf minus the
 * grace period, for every account, oldest cycle first. POST /v1/billing-runs and the scheduled job both
 * call it. A run is idempotent (a closed cycle is never closed again) and safe to run twice at once (a
 * per-account advisory lock, and the database's one-bill-per-account-and-cycle constraint behind it).
 *
 * Closing one cycle of a batch of accounts is one transaction and a dozen round trips whatever the batch
 * size: lock the accounts, read their state, meters and tariffs, load every meter's readings of the cycle
 * at once, estimate the gaps (VEE), validate, rate (the pure core), find readings committed late into
 * earlier bills and re-rate those periods (adjustment lines), then insert bills, estimates, meter lines
 * and adjustments set-based. Batches run a few at a time, so the database works while Node rates.
 *
 * Orchestration only: the rating of a meter's cycle (./rate-cycle.ts), the adjustment of a late period
 * (./adjustment-line.ts) and the bill itself (./bill-document.ts) are pure modules; the SQL is the
 * repositories'.
 */
import type { PoolClient } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { randomId } from '../../common/secrets.js';
import { DAY_MS, isoUtc } from '../../common/time.js';
import { RatingError, type MeterInterval } from '../../rating/index.js';
import { CurrencyMismatch, InvalidInput } from '../domain-errors.js';
import type { ReadingsRepository } from '../readings/readings.repository.js';
import { adjustmentLine } from './adjustment-line.js';
import { assembleBill, billHeader, type AdjustmentLine } from './bill-document.js';
import type { AccountBillingState, BillingMeter, BillingRepository, BillSummary, StoredRun } from './billing.repository.js';
import { cycleContaining, localDate, type BillingCycle } from './cycles.js';
import { findGaps, neighbourMarginMs, profileHistoryWindow } from './estimation.js';
import { rateMeterCycle, type RatedMeterCycle } from './rate-cycle.js';
import type { MeterTariffs, TariffsRepository } from '../tariffs/tariffs.repository.js';

/**
 * Readings committed up to this long before a close may not have been visible to it (received_at is the
 * committing transaction's start): the next close looks that far back for late data. An adjustment is
 * only written when re-rating changes the amount, so looking back further never bills twice.
 */
export const LATE_DATA_MARGIN_MS = 10 * 60_000;

export interface BillingOptions {
  graceDays: number;
  /** accounts per closing transaction */
  batchSize?: number;
  /** closing transactions in flight at once */
  concurrency?: number;
  clock?: () => number;
  /**
   * Counts bills closed (committed), by trigger: the prom-client counter `bills_closed_total{trigger}`
   * (common/metrics.ts creates it in the process's registry; anything with this `inc` will do).
   */
  billsClosed?: BillsClosedCounter;
}

/** What closeCycles needs of a prom-client Counter<'trigger'>. */
export interface BillsClosedCounter {
  inc(labels: { trigger: 'api' | 'schedule' }, value?: number): void;
}

export interface RunFailure {
  accountId: string;
  cycle: { from: string; to: string } | null;
  code: string;
  message: string;
  details?: string[];
}

export interface BillingRunResult extends StoredRun {
  graceDays: number;
  accountsExamined: number;
  /** ids of the bills created, when at most 1000 were */
  billIds?: string[];
}

interface DueAccount {
  state: AccountBillingState;
  cycle: BillingCycle;
}

interface RoundOutcome {
  closed: string[];
  /** accounts that may have more due cycles */
  again: string[];
  skipped: number;
  failures: RunFailure[];
}

export class BillingService {
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly clock: () => number;

  constructor(
    private readonly repo: BillingRepository,
    private readonly readings: ReadingsRepository,
    private readonly tariffs: TariffsRepository,
    private readonly log: Logger,
    private readonly opts: BillingOptions,
  ) {
    this.batchSize = opts.batchSize ?? 100;
    this.concurrency = opts.concurrency ?? 3;
    this.clock = opts.clock ?? Date.now;
  }

  get graceDays(): number {
    return this.opts.graceDays;
  }

  /** A billing run as stored, or null. */
  run(id: string): Promise<StoredRun | null> {
    return this.repo.getRun(id);
  }

  /** An account's bills by cycle start, after the cursor (a cycle start); null when the account does not exist. */
  async bills(accountId: string, after: number | null, limit: number): Promise<BillSummary[] | null> {
    const items = await this.repo.listBills(accountId, after, limit);
    if (!items.length && after === null && !(await this.repo.accountExists(accountId))) return null;
    return items;
  }

  /** A closed bill as stored, with its content hash, or null. */
  bill(id: string) {
    return this.repo.getBill(id);
  }

  /** Closes every cycle that ended at or before asOf - grace. asOf may not be in the future. */
  async closeCycles(asOf: number, trigger: 'api' | 'schedule' = 'api'): Promise<BillingRunResult> {
    const now = this.clock();
    if (asOf > now) throw new InvalidInput([{ field: 'asOf', message: `must not be in the future (now is ${isoUtc(now)})` }]);
    const cutoff = asOf - this.opts.graceDays * DAY_MS;
    const run = await this.repo.createRun(randomId('run'), trigger, asOf, cutoff);
    const log = this.log.child({ billingRun: run.id });
    log.info({ asOf: isoUtc(asOf), cutoff: isoUtc(cutoff) }, 'billing run started');
    const billIds: string[] = [];
    const failures: RunFailure[] = [];
    let skipped = 0;
    let examined = 0;
    for (let after = ''; ; ) {
      const page = await this.repo.accountIds(after, this.batchSize * this.concurrency * 4);
      if (!page.length) break;
      after = page[page.length - 1];
      examined += page.length;
      const batches: string[][] = [];
      for (let i = 0; i < page.length; i += this.batchSize) batches.push(page.slice(i, i + this.batchSize));
      await forEachConcurrently(batches, this.concurrency, async (batch) => {
        let pending = batch;
        while (pending.length) {
          const outcome = await this.closeRound(pending, run, cutoff, log);
          // Counted once committed: a round's bills are stored (and counted) together or not at all.
          if (outcome.closed.length) this.opts.billsClosed?.inc({ trigger }, outcome.closed.length);
          billIds.push(...outcome.closed);
          failures.push(...outcome.failures);
          skipped += outcome.skipped;
          pending = outcome.again;
        }
      });
    }
    const finished = await this.repo.finishRun(run.id, billIds.length, skipped, failures);
    log.info({ billsCreated: billIds.length, skipped, failures: failures.length }, 'billing run finished');
    return { ...finished, graceDays: this.opts.graceDays, accountsExamined: examined, ...(billIds.length <= 1000 ? { billIds } : {}) };
  }

  /** Closes the next due cycle of each account of the batch, in one transaction. */
  private async closeRound(accountIds: string[], run: StoredRun, cutoff: number, log: Logger): Promise<RoundOutcome> {
    const failures: RunFailure[] = [];
    let due: DueAccount[] = [];
    try {
      // The transaction's start: the bill's closedAt, and received_at of the estimates it stores.
      return await this.repo.transaction(async (client, closedAt) => {
        const locked = await this.repo.tryLockAccounts(client, accountIds);
        const found = await this.dueAccounts(client, locked, cutoff);
        due = found.due;
        const outcome: RoundOutcome = { closed: [], again: [], skipped: accountIds.length - locked.length, failures };
        if (!due.length) return outcome;
        const unread = due.map((d) => d.state.accountId).filter((id) => !found.meters.has(id));
        const meters = [
          ...due.flatMap((d) => found.meters.get(d.state.accountId) ?? []),
          ...(unread.length ? await this.repo.meters(client, unread) : []),
        ];
        const tariffs = await this.tariffs.forMeters(meters.map((m) => m.id), client);
        const metersOf = groupBy(meters, (m) => m.accountId);
        const rated = await this.rateCycles(client, due, metersOf, tariffs, failures);
        const adjustments = await this.adjustments(client, rated, metersOf, tariffs);
        const billDates = new Map<string, string>();
        const bills = rated.map((r) => {
          const zone = r.due.state.timezone;
          if (!billDates.has(zone)) billDates.set(zone, localDate(closedAt, zone));
          const header = billHeader(r.due.state, r.due.cycle, { id: run.id, asOf: run.asOf, cutoff: run.cutoff, graceDays: this.opts.graceDays }, closedAt, billDates.get(zone)!, r.meters[0].charges.currency);
          return { ...assembleBill(header, r.minorUnit, r.meters.map((m) => m.section), adjustments.get(r.due.state.accountId) ?? []), rated: r };
        });
        const inserted = await this.repo.insertBills(client, bills, run.id, closedAt);
        const kept = bills.filter((b) => inserted.has(b.document.id));
        await this.repo.insertEstimates(
          client,
          kept.flatMap((b) => b.rated.meters.flatMap((m) => m.estimates.map((estimate) => ({ meterId: m.meter.id, intervalSeconds: m.meter.intervalSeconds, estimate })))),
          closedAt,
        );
        outcome.closed = kept.map((b) => b.document.id);
        outcome.again = kept.map((b) => b.document.accountId);
        outcome.skipped += bills.length - kept.length;
        return outcome;
      });
    } catch (err) {
      log.error({ err, accounts: accountIds.length }, 'closing a batch of accounts failed; they stay open for the next run');
      const cycleOf = new Map(due.map((d) => [d.state.accountId, d.cycle]));
      return {
        closed: [],
        again: [],
        skipped: 0,
        failures: accountIds.map((accountId) => {
          const cycle = cycleOf.get(accountId);
          return { accountId, cycle: cycle ? { from: isoUtc(cycle.from), to: isoUtc(cycle.to) } : null, code: 'internal', message: (err as Error).message };
        }),
      };
    }
  }

  /**
   * The next cycle of each account, when it ended at or before the cutoff and the account has meters; and
   * the meters of the accounts never billed, which were read to find their first activity (the earliest
   * of their meters' `firstActivity`: one query serves both, instead of reading every meter's first
   * reading twice).
   */
  private async dueAccounts(client: PoolClient, accountIds: string[], cutoff: number): Promise<{ due: DueAccount[]; meters: Map<string, BillingMeter[]> }> {
    if (!accountIds.length) return { due: [], meters: new Map() };
    const states = await this.repo.accountStates(client, accountIds);
    const neverBilled = states.filter((s) => !s.lastBill).map((s) => s.accountId);
    const meters = groupBy(neverBilled.length ? await this.repo.meters(client, neverBilled) : [], (m) => m.accountId);
    const first = new Map([...meters].map(([accountId, list]) => [accountId, Math.min(...list.map((m) => m.firstActivity))]));
    const due: DueAccount[] = [];
    for (const state of states) {
      const start = state.lastBill ? state.lastBill.cycleTo : first.get(state.accountId);
      if (start === undefined) continue; // no meters yet: nothing to bill
      const cycle = cycleContaining(start, state.timezone, state.billingDay);
      if (cycle.to <= cutoff) due.push({ state, cycle });
    }
    return { due, meters };
  }

  /** Loads, estimates, validates and rates every meter of the due accounts; failed accounts are dropped. */
  private async rateCycles(client: PoolClient, due: DueAccount[], metersOf: Map<string, BillingMeter[]>, tariffs: Map<string, MeterTariffs>, failures: RunFailure[]) {
    // A meter is on a cycle's bill once it was active (created, or reporting) before the cycle ended.
    const jobs = due.flatMap((d) => (metersOf.get(d.state.accountId) ?? []).filter((m) => m.firstActivity < d.cycle.to).map((meter) => ({ due: d, meter })));
    // Packed until used: each meter's intervals are decoded once, right before it is rated, and dropped after
    // (a hundred decoded meter-months held at once cost the garbage collector more than the decoding).
    const loaded = await this.readings.packedWindows(
      jobs.map(({ due: d, meter }) => {
        const margin = neighbourMarginMs(meter.intervalSeconds);
        return { meterId: meter.id, from: d.cycle.from - margin, to: d.cycle.to + margin, intervalSeconds: meter.intervalSeconds };
      }),
      {},
      client,
    );
    // Meters whose gaps need the same-weekday profile wait for their history (one query for all of them, after
    // the others are rated); rateMeter is pure, so rating in this order gives what rating in job order gives.
    const results = new Array<{ rated: RatedMeter } | { error: unknown }>(jobs.length);
    const attempt = (i: number, readings: MeterInterval[], history: MeterInterval[] | undefined) => {
      const job = jobs[i];
      try {
        const rated = rateMeterCycle({ cycle: job.due.cycle, meter: job.meter, readings, history, tariffs: tariffs.get(job.meter.id)!, versionOf: this.versionOf });
        results[i] = { rated: { meter: job.meter, ...rated } };
      } catch (error) {
        results[i] = { error };
      }
    };
    const historyJobs: number[] = [];
    jobs.forEach((job, i) => {
      const readings = loaded[i].decode();
      const needsHistory = findGaps({ cycle: job.due.cycle, intervalSeconds: job.meter.intervalSeconds, zone: job.meter.timezone, readings }).some((g) => g.method === 'profile');
      if (needsHistory) historyJobs.push(i);
      else attempt(i, readings, undefined);
    });
    if (historyJobs.length) {
      const histories = await this.readings.windows(
        historyJobs.map((i) => {
          const window = profileHistoryWindow(jobs[i].due.cycle);
          return { meterId: jobs[i].meter.id, from: window.from, to: window.to, intervalSeconds: jobs[i].meter.intervalSeconds };
        }),
        { actualOnly: true },
        client,
      );
      historyJobs.forEach((i, k) => attempt(i, loaded[i].decode(), histories[k]));
    }

    // Per account in job order: its meters, or the first meter that failed (the account then stays open).
    const byAccount = new Map<string, { due: DueAccount; meters: RatedMeter[]; failed: boolean }>();
    for (const job of jobs) if (!byAccount.has(job.due.state.accountId)) byAccount.set(job.due.state.accountId, { due: job.due, meters: [], failed: false });
    jobs.forEach((job, i) => {
      const entry = byAccount.get(job.due.state.accountId)!;
      if (entry.failed) return;
      const result = results[i];
      if ('rated' in result) entry.meters.push(result.rated);
      else {
        entry.failed = true;
        failures.push(failureOf(job.due, job.meter.id, result.error));
      }
    });
    const rated: { due: DueAccount; meters: RatedMeter[]; minorUnit: number }[] = [];
    for (const entry of byAccount.values()) {
      if (entry.failed) continue;
      const currencies = [...new Set(entry.meters.map((m) => m.charges.currency))];
      if (currencies.length > 1) {
        const mismatch = new CurrencyMismatch(currencies);
        failures.push({ ...failureOf(entry.due, null, null), code: mismatch.code, message: mismatch.message });
        continue;
      }
      rated.push({ due: entry.due, meters: entry.meters, minorUnit: entry.meters[0].minorUnit });
    }
    return rated;
  }

  private readonly versionOf = (document: Parameters<TariffsRepository['versionOf']>[0]) => this.tariffs.versionOf(document);

  /**
   * Adjustment lines for readings committed since each account's previous close into cycles already
   * billed: per (meter, corrected bill), re-rated total minus what was billed so far, when not zero.
   */
  private async adjustments(client: PoolClient, rated: { due: DueAccount }[], metersOf: Map<string, BillingMeter[]>, tariffs: Map<string, MeterTariffs>): Promise<Map<string, AdjustmentLine[]>> {
    const requests = rated.flatMap(({ due }) => {
      const last = due.state.lastBill;
      if (!last || due.state.firstBilledFrom === null) return [];
      return (metersOf.get(due.state.accountId) ?? []).map((m) => ({
        meterId: m.id,
        accountId: due.state.accountId,
        since: last.closedAt - LATE_DATA_MARGIN_MS,
        from: due.state.firstBilledFrom!,
        before: due.cycle.from,
      }));
    });
    const late = await this.repo.lateCycles(client, requests);
    const result = new Map<string, AdjustmentLine[]>();
    if (!late.length) return result;
    const meterById = new Map([...metersOf.values()].flat().map((m) => [m.id, m]));
    const [billed, readings] = await Promise.all([
      this.repo.billedSoFar(client, late),
      this.readings.windows(late.map((l) => ({ meterId: l.meterId, from: l.cycleFrom, to: l.cycleTo, intervalSeconds: meterById.get(l.meterId)!.intervalSeconds })), {}, client),
    ]);
    late.forEach((l, i) => {
      const meter = meterById.get(l.meterId)!;
      let line: AdjustmentLine | null;
      try {
        line = adjustmentLine({ ...l, meterIntervalSeconds: meter.intervalSeconds }, readings[i], billed[i], tariffs.get(l.meterId)!, this.versionOf);
      } catch (err) {
        this.log.warn({ err, meterId: l.meterId, billId: l.billId }, 'late data could not be re-rated; no adjustment');
        return;
      }
      if (!line) return;
      const lines = result.get(meter.accountId) ?? [];
      lines.push(line);
      result.set(meter.accountId, lines);
    });
    for (const lines of result.values()) lines.sort((a, b) => a.period.from.localeCompare(b.period.from) || a.meterId.localeCompare(b.meterId));
    return result;
  }
}

interface RatedMeter extends RatedMeterCycle {
  meter: BillingMeter;
}

function failureOf(due: DueAccount, meterId: string | null, err: unknown): RunFailure {
  const cycle = { from: isoUtc(due.cycle.from), to: isoUtc(due.cycle.to) };
  if (err instanceof RatingError) {
    return { accountId: due.state.accountId, cycle, code: err.code, message: meterId ? `meter "${meterId}": ${err.message}` : err.message, details: err.details.slice(0, 20) };
  }
  return { accountId: due.state.accountId, cycle, code: 'internal', message: err ? (err as Error).message : '' };
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return map;
}

async function forEachConcurrently<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(workers);
}
