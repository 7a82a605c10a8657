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
 */
import { inTransaction, type Pool, type PoolClient } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { randomId } from '../../common/secrets.js';
import { rateWindow, RatingError, type Charges, type MeterInterval } from '../../rating/index.js';
import { badRequest } from '../errors.js';
import { assembleBill, isZeroMoney, moneyDifference, type AdjustmentLine, type BillHeader, type MeterBillSection } from './bill-document.js';
import { BillingRepository, type AccountBillingState, type BillingMeter, type StoredRun } from './billing.repository.js';
import { cycleContaining, cycleDays, isoUtc, localDate, type BillingCycle } from './cycles.js';
import { estimateGaps, findGaps, neighbourMarginMs, profileHistoryWindow, type Estimate } from './estimation.js';
import { loadIntervals, loadPackedIntervals } from './interval-loader.js';
import type { MeterTariffs, TariffCatalog } from './tariff-catalog.js';
import { validateCycle } from './validation.js';

const DAY_MS = 86_400_000;
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
  private readonly repo: BillingRepository;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly clock: () => number;

  constructor(
    private readonly pool: Pool,
    private readonly tariffs: TariffCatalog,
    private readonly log: Logger,
    private readonly opts: BillingOptions,
  ) {
    this.repo = new BillingRepository(pool);
    this.batchSize = opts.batchSize ?? 100;
    this.concurrency = opts.concurrency ?? 3;
    this.clock = opts.clock ?? Date.now;
  }

  get graceDays(): number {
    return this.opts.graceDays;
  }

  get repository(): BillingRepository {
    return this.repo;
  }

  /** Closes every cycle that ended at or before asOf - grace. asOf may not be in the future. */
  async closeCycles(asOf: number, trigger: 'api' | 'schedule' = 'api'): Promise<BillingRunResult> {
    const now = this.clock();
    if (asOf > now) {
      throw badRequest('invalid body: 1 problem(s)', [{ field: 'body.asOf', message: `must not be in the future (now is ${isoUtc(now)})` }]);
    }
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
      return await inTransaction(this.pool, async (client) => {
        // The transaction's start: the bill's closedAt, and received_at of the estimates it stores.
        const closedAt = (await client.query<{ now: Date }>('SELECT now()')).rows[0].now.getTime();
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
          const header = this.header(r.due, run, closedAt, billDates.get(zone)!, r.meters[0].charges.currency);
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
    const loaded = await loadPackedIntervals(
      client,
      jobs.map(({ due: d, meter }) => {
        const margin = neighbourMarginMs(meter.intervalSeconds);
        return { meterId: meter.id, from: d.cycle.from - margin, to: d.cycle.to + margin, intervalSeconds: meter.intervalSeconds };
      }),
    );
    // Meters whose gaps need the same-weekday profile wait for their history (one query for all of them, after
    // the others are rated); rateMeter is pure, so rating in this order gives what rating in job order gives.
    const results = new Array<{ rated: RatedMeter } | { error: unknown }>(jobs.length);
    const attempt = (i: number, readings: MeterInterval[], history: MeterInterval[] | undefined) => {
      const job = jobs[i];
      try {
        results[i] = { rated: this.rateMeter(job.due.cycle, job.meter, readings, history, tariffs.get(job.meter.id)!) };
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
      const histories = await loadIntervals(
        client,
        historyJobs.map((i) => {
          const window = profileHistoryWindow(jobs[i].due.cycle);
          return { meterId: jobs[i].meter.id, from: window.from, to: window.to, intervalSeconds: jobs[i].meter.intervalSeconds };
        }),
        { actualOnly: true },
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
        failures.push({ ...failureOf(entry.due, null, null), code: 'currency_mismatch', message: `the account's meters are rated in different currencies (${currencies.join(', ')})` });
        continue;
      }
      rated.push({ due: entry.due, meters: entry.meters, minorUnit: entry.meters[0].minorUnit });
    }
    return rated;
  }

  private rateMeter(cycle: BillingCycle, meter: BillingMeter, readings: MeterInterval[], history: MeterInterval[] | undefined, tariffs: MeterTariffs): RatedMeter {
    if (!tariffs.hasAssignment) throw new RatingError('no_tariff_in_effect', `meter "${meter.id}" has no tariff assigned`, []);
    const historyMap = history ? new Map(history.map((r) => [r.intervalStart, { importMwh: Number(r.importMwh), exportMwh: Number(r.exportMwh) }])) : undefined;
    const estimation = estimateGaps({ cycle, intervalSeconds: meter.intervalSeconds, zone: meter.timezone, readings, history: historyMap });
    const stored = readings.filter((r) => r.intervalStart >= cycle.from && r.intervalStart < cycle.to);
    const intervals: MeterInterval[] = [
      ...stored,
      ...estimation.estimates.map((e) => ({ intervalStart: e.intervalStart, intervalSeconds: meter.intervalSeconds, importMwh: e.importMwh, exportMwh: e.exportMwh, quality: 'estimated' as const })),
    ];
    const charges = rateWindow({ tariffTimeline: tariffs.timeline, intervals, billingWindow: cycle, billingCycle: cycle, meterIntervalSeconds: meter.intervalSeconds });
    const validation = validateCycle(stored, meter.intervalSeconds, estimation.unestimated);
    const section: MeterBillSection = {
      meterId: meter.id,
      intervalSeconds: meter.intervalSeconds,
      tariffId: charges.pieces[charges.pieces.length - 1].tariffId,
      tariffIds: charges.tariffIds,
      tariffVersions: this.versionsOf(tariffs, cycle),
      lines: charges.lines,
      subtotal: charges.subtotal,
      taxes: charges.taxes,
      total: charges.total,
      asOf: charges.asOf,
      coverage: charges.coverage,
      pieces: charges.pieces,
      estimated: {
        linear: estimation.estimates.filter((e) => e.method === 'linear').length,
        profile: estimation.estimates.filter((e) => e.method === 'profile').length,
      },
      warnings: validation.warnings,
      warningsOmitted: validation.omitted,
    };
    return { meter, charges, section, estimates: estimation.estimates, minorUnit: minorUnitOf(charges, tariffs) };
  }

  /** The tariff versions whose time in effect overlaps the cycle, in time order. */
  private versionsOf(tariffs: MeterTariffs, cycle: BillingCycle) {
    const entries = [...tariffs.timeline].sort((a, b) => a.from - b.from);
    return entries
      .filter((e, i) => e.from < cycle.to && (e.to ?? entries[i + 1]?.from ?? Number.POSITIVE_INFINITY) > cycle.from)
      .map((e) => this.tariffs.versionOf(e.tariff));
  }

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
      loadIntervals(client, late.map((l) => ({ meterId: l.meterId, from: l.cycleFrom, to: l.cycleTo, intervalSeconds: meterById.get(l.meterId)!.intervalSeconds }))),
    ]);
    late.forEach((l, i) => {
      const meter = meterById.get(l.meterId)!;
      const cycle = { from: l.cycleFrom, to: l.cycleTo };
      const meterTariffs = tariffs.get(l.meterId)!;
      let charges: Charges;
      try {
        charges = rateWindow({ tariffTimeline: meterTariffs.timeline, intervals: readings[i], billingWindow: cycle, billingCycle: cycle, meterIntervalSeconds: meter.intervalSeconds });
      } catch (err) {
        this.log.warn({ err, meterId: l.meterId, billId: l.billId }, 'late data could not be re-rated; no adjustment');
        return;
      }
      if (charges.currency !== billed[i].currency) return;
      const minorUnit = minorUnitOf(charges, meterTariffs);
      const amount = moneyDifference(charges.total, billed[i].previouslyBilled, minorUnit);
      if (isZeroMoney(amount)) return;
      const line: AdjustmentLine = {
        type: 'adjustment',
        meterId: l.meterId,
        reason: 'late_data',
        correctsBillId: l.billId,
        period: { from: isoUtc(l.cycleFrom), to: isoUtc(l.cycleTo) },
        previouslyBilled: moneyDifference(billed[i].previouslyBilled, '0', minorUnit),
        rerated: { subtotal: charges.subtotal, taxes: charges.taxes, total: charges.total, coverage: charges.coverage, tariffVersions: this.versionsOf(meterTariffs, cycle) },
        amount,
      };
      const accountId = meter.accountId;
      const lines = result.get(accountId) ?? [];
      lines.push(line);
      result.set(accountId, lines);
    });
    for (const lines of result.values()) lines.sort((a, b) => a.period.from.localeCompare(b.period.from) || a.meterId.localeCompare(b.meterId));
    return result;
  }

  private header(due: DueAccount, run: StoredRun, closedAt: number, billDate: string, currency: string): BillHeader {
    const { state, cycle } = due;
    const days = cycleDays(cycle, state.timezone);
    return {
      id: `${state.accountId}.${days.firstDay}`,
      accountId: state.accountId,
      timezone: state.timezone,
      billingDay: state.billingDay,
      cycle: { from: isoUtc(cycle.from), to: isoUtc(cycle.to), ...days },
      billDate,
      closedAt: isoUtc(closedAt),
      run: { id: run.id, asOf: run.asOf, cutoff: run.cutoff, graceDays: this.opts.graceDays },
      currency,
    };
  }
}

interface RatedMeter {
  meter: BillingMeter;
  charges: Charges;
  section: MeterBillSection;
  estimates: Estimate[];
  minorUnit: number;
}

function minorUnitOf(charges: Charges, tariffs: MeterTariffs): number {
  const entry = tariffs.timeline.find((e) => e.tariff.id === charges.pieces[charges.pieces.length - 1]?.tariffId) ?? tariffs.timeline[0];
  return entry.tariff.currency.minorUnit;
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
