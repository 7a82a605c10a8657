/**
 * Billing runs: `closeCycles(asOf)` closes every billing cycle that ended at or before asOf minus the
 * grace period, for every account, oldest cycle first. POST /v1/billing-runs and the scheduled job both
 * call it. A run is idempotent (a closed cycle is never closed again) and safe to run twice at once (a
 * per-account advisory lock, and the database's one-bill-per-account-and-cycle constraint behind it).
 *
 * Closing one cycle of a batch of accounts is one transaction and a dozen round trips whatever the batch
 * size (plus the history reads of each meter whose tariff has a ratchet or carries across cycles): lock the accounts, read their state, meters and tariffs, load every meter's readings of the cycle
 * at once, estimate the gaps (VEE), validate, rate (the pure core, with what earlier cycles carry into the
 * cycle: ratchet peaks, net metering banks and balances), find readings committed late into earlier bills
 * and re-rate those periods (adjustment lines), then insert bills, estimates, meter lines and adjustments
 * set-based. Batches run a few at a time, so the database works while Node rates.
 *
 * A run is recorded as it starts and followed as it goes (`startRun`: the run at once, and a promise of its
 * end); its counts and failures are stored as each batch commits. An account that fails is recorded
 * (account, cycle, reason) and stays open for the next run; the others go on.
 *
 * Orchestration only: the rating of a meter's cycle (./rate-cycle.ts), the adjustment of a late period
 * (./adjustment-line.ts) and the bill itself (./bill-document.ts) are pure modules; the SQL is the
 * repositories'.
 */
import type { PoolClient } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { randomId } from '../../common/secrets.js';
import { DAY_MS, isoUtc, utcMillis } from '../../common/time.js';
import { RatingError, type MeterInterval } from '../../rating/index.js';
import { historyReadsOn } from '../charges/charges.repository.js';
import { carriedIntoCycle, NOTHING_CARRIED, type CarriedIntoWindow } from '../charges/rating-history.js';
import { Conflict, CurrencyMismatch, InvalidInput, NotFound, RatingFailed } from '../domain-errors.js';
import type { ReadingsRepository } from '../readings/readings.repository.js';
import { adjustmentLine } from './adjustment-line.js';
import { assembleBill, billHeader, creditNote, type AdjustmentLine, type BillDocument, type CreditNoteDocument } from './bill-document.js';
import type { AccountBillingState, BillingMeter, BillingRepository, BillSummary, RunFailure, RunState, StoredRun } from './billing.repository.js';
import { serviceWindow } from './service-span.js';
import { ServiceLifecycleService } from './service-lifecycle.service.js';
import { cycleContaining, cycleStartIn, localDate, type BillingCycle } from './cycles.js';
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

export type { RunFailure } from './billing.repository.js';

export interface BillingRunResult extends StoredRun {
  accountsExamined: number;
  /** ids of the bills created, when at most 1000 were */
  billIds?: string[];
}

/** What a run closes: cycles ended by asOf minus the grace period, or the cycles ending in a calendar month. */
export type RunRequest = { asOf: number } | { cyclesEndingIn: string };

/** A started run: as recorded at its start, and its end (never rejects: a run that stops is 'failed'). */
export interface StartedRun {
  run: StoredRun;
  done: Promise<BillingRunResult>;
}

/** A void: the credit note reversing the bill and the re-bill of its cycle, both stored. */
export interface VoidResult {
  voided: string;
  creditNote: CreditNoteDocument & { contentHash: string };
  rebill: BillDocument & { contentHash: string };
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
    this.lifecycle = new ServiceLifecycleService(repo.serviceLifecycle());
  }

  /** Service starts and ends of accounts and meters (move-in, move-out, meter exchange). */
  readonly lifecycle: ServiceLifecycleService;

  get graceDays(): number {
    return this.opts.graceDays;
  }

  /** A billing run as stored (with its failures, and the ids of its bills once over when at most 1000), or null. */
  async run(id: string): Promise<(StoredRun & { billIds?: string[] }) | null> {
    const run = await this.repo.getRun(id);
    if (!run || run.state === 'running' || run.billsCreated > 1000) return run;
    return { ...run, billIds: await this.repo.billIdsOfRun(id, 1000) };
  }

  /** Runs, latest first, after the cursor (a run id); each with at most 100 of its failures (failureCount counts all). */
  runs(after: string | null, limit: number, state: RunState | null): Promise<StoredRun[]> {
    return this.repo.listRuns(after, limit, state, 100);
  }

  /**
   * An account's bills and credit notes by cycle, after the cursor (a cycle start, and the last id listed
   * of that cycle); null when the account does not exist.
   */
  async bills(accountId: string, after: number | null, limit: number, afterId: string | null = null): Promise<BillSummary[] | null> {
    const items = await this.repo.listBills(accountId, after, afterId, limit);
    if (!items.length && after === null && !(await this.repo.accountExists(accountId))) return null;
    return items;
  }

  /** A bill or credit note as stored, with its content hash and, once voided, its credit note and re-bill; or null. */
  bill(id: string) {
    return this.repo.getBill(id);
  }

  /** Closes every cycle that ended at or before asOf - grace, and answers when the run is over. */
  async closeCycles(asOf: number, trigger: 'api' | 'schedule' = 'api'): Promise<BillingRunResult> {
    return (await this.startRun({ asOf }, trigger)).done;
  }

  /**
   * Validates the request, records the run (state 'running') and starts it; the run goes on after this
   * answers. `asOf` may not be in the future; `cyclesEndingIn` ('YYYY-MM') closes, per account, the cycles
   * whose last local day is in that month or before (no grace period: the month's end in the account's
   * zone, or now when earlier), and may not be a month that has not begun.
   */
  async startRun(request: RunRequest, trigger: 'api' | 'schedule' = 'api'): Promise<StartedRun> {
    const now = this.clock();
    let asOf: number;
    let cutoff: number;
    let cutoffOf: (state: AccountBillingState) => number;
    let period: string | null = null;
    if ('asOf' in request) {
      asOf = request.asOf;
      if (asOf > now) throw new InvalidInput([{ field: 'asOf', message: `must not be in the future (now is ${isoUtc(now)})` }]);
      cutoff = asOf - this.opts.graceDays * DAY_MS;
      cutoffOf = () => cutoff;
    } else {
      const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(request.cyclesEndingIn);
      if (!match) throw new InvalidInput([{ field: 'cyclesEndingIn', message: 'must be a calendar month YYYY-MM' }]);
      const [year, month] = [Number(match[1]), Number(match[2])];
      // The month begins first at UTC+14.
      if (utcMillis(year, month, 1) - 14 * 3_600_000 > now) throw new InvalidInput([{ field: 'cyclesEndingIn', message: `must not be a month that has not begun (now is ${isoUtc(now)})` }]);
      period = request.cyclesEndingIn;
      const [nextYear, nextMonth] = month === 12 ? [year + 1, 1] : [year, month + 1];
      asOf = now;
      cutoff = Math.min(utcMillis(nextYear, nextMonth, 1), now);
      cutoffOf = (state) => Math.min(cycleStartIn(nextYear, nextMonth, 1, state.timezone), now);
    }
    const run = await this.repo.createRun(randomId('run'), trigger, asOf, cutoff, { period, graceDays: period ? null : this.opts.graceDays, countAccounts: true });
    const done = this.execute(run, trigger, cutoffOf);
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return { run, done };
  }

  /** Waits for the runs started by this service (for a clean shutdown and for tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private readonly inFlight = new Set<Promise<BillingRunResult>>();

  private async execute(run: StoredRun, trigger: 'api' | 'schedule', cutoffOf: (state: AccountBillingState) => number): Promise<BillingRunResult> {
    const log = this.log.child({ billingRun: run.id });
    log.info({ asOf: run.asOf, cutoff: run.cutoff, cyclesEndingIn: run.cyclesEndingIn }, 'billing run started');
    let examined = 0;
    try {
      for (let after = ''; ; ) {
        const page = await this.repo.accountIds(after, this.batchSize * this.concurrency * 4);
        if (!page.length) break;
        after = page[page.length - 1];
        examined += page.length;
        const batches: string[][] = [];
        for (let i = 0; i < page.length; i += this.batchSize) batches.push(page.slice(i, i + this.batchSize));
        await forEachConcurrently(batches, this.concurrency, async (batch) => {
          let pending = batch;
          const step = { accountsDone: 0, billsCreated: 0, skipped: 0, failures: [] as RunFailure[] };
          while (pending.length) {
            const outcome = await this.closeRound(pending, run, cutoffOf, log);
            // Counted once committed: a round's bills are stored (and counted) together or not at all.
            if (outcome.closed.length) this.opts.billsClosed?.inc({ trigger }, outcome.closed.length);
            step.billsCreated += outcome.closed.length;
            step.failures.push(...outcome.failures);
            step.skipped += outcome.skipped;
            pending = outcome.again;
          }
          step.accountsDone = batch.length;
          for (const f of step.failures) log.warn({ accountId: f.accountId, cycle: f.cycle, code: f.code, reason: f.message }, `account ${f.accountId} not billed: ${f.code}`);
          await this.repo.recordProgress(run.id, step);
        });
      }
      const finished = await this.repo.finishRun(run.id, 'finished', null);
      const failed = finished.failures.map((f) => `${f.accountId} (${f.cycle?.from ?? 'no cycle'}): ${f.code}`);
      log.info({ billsCreated: finished.billsCreated, skipped: finished.skipped, failures: finished.failureCount, failedAccounts: failed.slice(0, 50) }, 'billing run finished');
      const billIds = finished.billsCreated <= 1000 ? await this.repo.billIdsOfRun(run.id, 1000) : undefined;
      return { ...finished, accountsExamined: examined, ...(billIds ? { billIds } : {}) };
    } catch (err) {
      log.error({ err }, 'billing run stopped');
      const failed = await this.repo.finishRun(run.id, 'failed', (err as Error).message).catch(() => ({ ...run, state: 'failed' as const, error: (err as Error).message }));
      return { ...failed, accountsExamined: examined };
    }
  }

  /**
   * Voids a bill: in one transaction, a credit note reversing what it charged for its cycle (its meters'
   * charges and every later adjustment of them) and a re-bill of the cycle rated from the data, tariff
   * assignments and service spans stored now, each naming the other. The voided bill is never changed.
   * Refused (409) for a credit note, a bill already voided, or a cycle that cannot be rated now.
   */
  async voidBill(billId: string, reason: string | null): Promise<VoidResult> {
    const stored = await this.repo.getBill(billId);
    if (!stored) throw new NotFound(`bill "${billId}"`);
    if (stored.kind !== 'bill') throw new Conflict(`"${billId}" is a credit note: only bills can be voided`);
    if (stored.voidedBy) throw new Conflict(`bill "${billId}" is already voided (credit note "${stored.voidedBy.creditNoteId}", re-bill "${stored.voidedBy.rebillId}")`);
    const original = stored.document;
    const accountId = original.accountId;
    try {
      return await this.repo.transaction(async (client, closedAt) => {
        await this.repo.lockAccount(client, accountId);
        const [state] = await this.repo.accountStates(client, [accountId]);
        const cycle = { from: Date.parse(original.cycle.from), to: Date.parse(original.cycle.to) };
        const meters = await this.repo.meters(client, [accountId]);
        const tariffs = await this.tariffs.forMeters(meters.map((m) => m.id), client);
        const failures: RunFailure[] = [];
        const [rated] = await this.rateCycles(client, [{ state, cycle }], groupBy(meters, (m) => m.accountId), tariffs, failures);
        if (failures.length) throw new RatingFailed(failures[0].code, `the cycle cannot be re-billed: ${failures[0].message}`, failures[0].details ?? []);
        if (!rated) throw new Conflict(`no meter of account "${accountId}" was in service during the cycle of bill "${billId}"`);
        const run = await this.repo.createRun(randomId('run'), 'void', closedAt, closedAt, { period: null, graceDays: null, countAccounts: false }, client);
        const revision = stored.revision + 1;
        const rebillId = `${accountId}.${original.cycle.firstDay}.r${revision}`;
        const creditNoteId = `${billId}.credit`;
        const billDate = localDate(closedAt, state.timezone);
        const header = {
          ...billHeader(state, cycle, { id: run.id, asOf: isoUtc(closedAt), cutoff: isoUtc(closedAt), graceDays: 0 }, closedAt, billDate, rated.meters[0].charges.currency),
          id: rebillId,
          revision,
          supersedes: billId,
          creditNoteId,
        };
        const rebill = assembleBill(header, rated.minorUnit, rated.meters.map((m) => m.section), []);
        const note = creditNote({
          id: creditNoteId,
          bill: original,
          billContentHash: stored.contentHash,
          laterAdjustments: await this.repo.adjustmentsOf(client, billId),
          rebillId,
          reason,
          closedAt,
          billDate,
          minorUnit: (original.total.split('.')[1] ?? '').length,
        });
        await this.repo.insertCreditNote(client, note, stored.revision, run.id, closedAt);
        const inserted = await this.repo.insertBills(client, [rebill], run.id, closedAt);
        if (!inserted.size) throw new Conflict(`bill "${billId}" is already voided`);
        await this.repo.insertEstimates(
          client,
          rated.meters.flatMap((m) => m.estimates.map((estimate) => ({ meterId: m.meter.id, intervalSeconds: m.meter.intervalSeconds, estimate }))),
          closedAt,
        );
        await this.repo.finishVoidRun(client, run.id);
        this.log.info({ billId, creditNoteId, rebillId, reason }, 'bill voided and re-billed');
        return {
          voided: billId,
          creditNote: { ...note.document, contentHash: note.contentHash },
          rebill: { ...rebill.document, contentHash: rebill.contentHash },
        };
      });
    } catch (err) {
      // Two voids at once: the second meets the unique link (a bill is superseded and reversed once).
      if ((err as { code?: string }).code === '23505') throw new Conflict(`bill "${billId}" is already voided`);
      throw err;
    }
  }

  /** Closes the next due cycle of each account of the batch, in one transaction. */
  private async closeRound(accountIds: string[], run: StoredRun, cutoffOf: (state: AccountBillingState) => number, log: Logger): Promise<RoundOutcome> {
    const failures: RunFailure[] = [];
    let due: DueAccount[] = [];
    try {
      // The transaction's start: the bill's closedAt, and received_at of the estimates it stores.
      return await this.repo.transaction(async (client, closedAt) => {
        const locked = await this.repo.tryLockAccounts(client, accountIds);
        const found = await this.dueAccounts(client, locked, cutoffOf);
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
          const header = billHeader(r.due.state, r.due.cycle, { id: run.id, asOf: run.asOf, cutoff: run.cutoff, graceDays: run.graceDays ?? 0 }, closedAt, billDates.get(zone)!, r.meters[0].charges.currency);
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
  private async dueAccounts(client: PoolClient, accountIds: string[], cutoffOf: (state: AccountBillingState) => number): Promise<{ due: DueAccount[]; meters: Map<string, BillingMeter[]> }> {
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
      // After a move-out, the cycle holding it is the account's last.
      if (state.serviceEnd !== null && cycle.from >= state.serviceEnd) continue;
      if (cycle.to <= cutoffOf(state)) due.push({ state, cycle });
    }
    return { due, meters };
  }

  /** Loads, estimates, validates and rates every meter of the due accounts; failed accounts are dropped. */
  private async rateCycles(client: PoolClient, due: DueAccount[], metersOf: Map<string, BillingMeter[]>, tariffs: Map<string, MeterTariffs>, failures: RunFailure[]) {
    // A meter is on a cycle's bill once it was in service (explicitly, or created, or reporting) before the
    // cycle ended, and until its service ended.
    const jobs = due.flatMap((d) =>
      (metersOf.get(d.state.accountId) ?? []).filter((m) => m.firstActivity < d.cycle.to && serviceWindow(d.cycle, m.service) !== null).map((meter) => ({ due: d, meter })),
    );
    const carried = await this.carriedInto(
      client,
      jobs.map(({ due: d, meter }) => ({ meter, cycle: d.cycle, state: d.state, tariffs: tariffs.get(meter.id)! })),
    );
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
        const rated = rateMeterCycle({
          cycle: job.due.cycle,
          meter: job.meter,
          readings,
          history,
          tariffs: tariffs.get(job.meter.id)!,
          versionOf: this.versionOf,
          service: job.meter.service,
          carried: carried[i],
        });
        results[i] = { rated: { meter: job.meter, ...rated } };
      } catch (error) {
        results[i] = { error };
      }
    };
    const historyJobs: number[] = [];
    jobs.forEach((job, i) => {
      const readings = loaded[i].decode();
      const needsHistory = findGaps({ cycle: serviceWindow(job.due.cycle, job.meter.service) ?? job.due.cycle, intervalSeconds: job.meter.intervalSeconds, zone: job.meter.timezone, readings }).some((g) => g.method === 'profile');
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
    // An account whose every meter's service ended before the cycle (and that has not moved out) cannot be
    // billed: said, so that the back office records the move-out or the new meter.
    for (const d of due) {
      if (byAccount.has(d.state.accountId)) continue;
      failures.push({ ...failureOf(d, null, null), code: 'no_meter_in_service', message: 'no meter of the account is in service during the cycle (record a move-out, or a meter exchange)' });
    }
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

  /**
   * What is carried into each (meter, cycle) (`carriedIntoCycle`, the loader the charges endpoint uses): the
   * peaks of the preceding cycles for a demand ratchet, the metering state for a tariff that carries across
   * cycles (net metering, a net billing balance, an annual minimum), derived from the readings stored now,
   * inside the closing transaction. Nothing is read for a meter whose tariffs need neither.
   */
  private async carriedInto(
    client: PoolClient,
    requests: { meter: BillingMeter; cycle: BillingCycle; state: { timezone: string; billingDay: number }; tariffs: MeterTariffs | undefined }[],
  ): Promise<CarriedIntoWindow[]> {
    const reads = historyReadsOn(client);
    const out: CarriedIntoWindow[] = [];
    for (const r of requests) {
      if (!r.tariffs?.hasAssignment) {
        out.push(NOTHING_CARRIED);
        continue;
      }
      const meter = { meterId: r.meter.id, intervalSeconds: r.meter.intervalSeconds, timezone: r.state.timezone, billingDay: r.state.billingDay, tariffTimeline: r.tariffs.timeline, serviceStart: r.meter.service.start };
      const { demandHistory, carriedIn } = await carriedIntoCycle(reads, meter, r.cycle);
      out.push({ ...(demandHistory ? { demandHistory } : {}), ...(carriedIn ? { carriedIn } : {}) });
    }
    return out;
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
    const found = await this.repo.lateCycles(client, requests);
    const result = new Map<string, AdjustmentLine[]>();
    if (!found.length) return result;
    const meterById = new Map([...metersOf.values()].flat().map((m) => [m.id, m]));
    const stateOf = new Map(rated.map(({ due }) => [due.state.accountId, due.state]));
    const dueOf = new Map(rated.map(({ due }) => [due.state.accountId, due]));
    const carriedFor = (list: typeof found) =>
      this.carriedInto(
        client,
        list.map((l) => {
          const meter = meterById.get(l.meterId)!;
          return { meter, cycle: { from: l.cycleFrom, to: l.cycleTo }, state: stateOf.get(meter.accountId)!, tariffs: tariffs.get(l.meterId) };
        }),
      );
    // Under a tariff that carries across cycles, late data in a cycle changes what the billed cycles after
    // it started from: those are re-rated too (an adjustment only where their amount or carry-over changed).
    let late = found;
    let histories = await carriedFor(late);
    const carrying = new Map<string, number>();
    late.forEach((l, i) => {
      if (histories[i].carriedIn) carrying.set(l.meterId, Math.min(carrying.get(l.meterId) ?? Number.POSITIVE_INFINITY, l.cycleFrom));
    });
    if (carrying.size) {
      const seen = new Set(late.map((l) => `${l.meterId} ${l.billId}`));
      const later = (
        await this.repo.billsBetween(
          client,
          [...carrying].map(([meterId, after]) => {
            const accountId = meterById.get(meterId)!.accountId;
            return { meterId, accountId, after, before: dueOf.get(accountId)!.cycle.from };
          }),
        )
      ).filter((l) => !seen.has(`${l.meterId} ${l.billId}`));
      if (later.length) {
        late = [...late, ...later];
        histories = [...histories, ...(await carriedFor(later))];
      }
    }
    const [billed, readings] = await Promise.all([
      this.repo.billedSoFar(client, late),
      this.readings.windows(late.map((l) => ({ meterId: l.meterId, from: l.cycleFrom, to: l.cycleTo, intervalSeconds: meterById.get(l.meterId)!.intervalSeconds })), {}, client),
    ]);
    late.forEach((l, i) => {
      const meter = meterById.get(l.meterId)!;
      let line: AdjustmentLine | null;
      try {
        line = adjustmentLine({ ...l, meterIntervalSeconds: meter.intervalSeconds, service: meter.service, ...histories[i] }, readings[i], billed[i], tariffs.get(l.meterId)!, this.versionOf);
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
