/**
 * Running charges: what an account's open billing cycle costs so far (GET /v1/accounts/{id}/charges).
 *
 * Definition: for each meter in service during the open cycle, the rating core's charges of the part of
 * the cycle in service, rated as the close rates it (./rate-cycle.ts `cycleInService`: the whole cycle
 * unless a service start or end cuts it, so daily and monthly charges count the days in service; the tariff
 * in effect only there; nothing carried in after a service start inside the cycle; the meter's final
 * window when its service ends inside it), from the readings committed before the request, no estimates;
 * the account total is the sum. Meters not in service during the cycle are left out (an account whose
 * service ended before it shows no meters and zero totals). It is therefore exactly a full re-rating, and
 * it becomes the bill at close when nothing arrives late and nothing is missing.
 *
 * How it stays cheap: `OpenCycleStore` keeps each requested meter's open-cycle intervals in memory (sorted
 * typed arrays, 25 bytes per interval, least recently used meters evicted) and applies every reading the
 * gateway commits in this process (the IngestBatcher's onCommitted hook, called after the commit and
 * before the PUBACK) — inserts, and actual readings replacing estimates, exactly as the database does. The
 * rating of a meter is memoized until one of its intervals or its tariff timeline changes. A request thus
 * costs two small queries (account and meters; tariff assignments and versions) and no interval reads, and
 * two more when a meter's tariff carries something into the cycle (below).
 *
 * A meter is loaded from the database on first use; hook calls that arrive while it loads are replayed
 * after the load, and because a stored actual never changes and an estimate only ever becomes an actual,
 * replaying a reading the load already saw changes nothing. Without a gateway in this process (the API run
 * as its own process) nothing feeds the store, so every request re-reads the cycle from the database
 * (`live: false`): still exact, costlier (see README, Performance).
 *
 * What a ratchet or a carrying metering mode carries into the cycle (derived from the readings before it)
 * is kept per meter in both modes (at most `capacity` meters), with the database instant it reflects the
 * readings up to: each request reads the commit horizon (the start of the oldest open transaction) and
 * asks the database which readings before the cycle were committed since (whoever wrote them: the
 * gateway, a close storing estimates, another process). None: the kept state is the answer; some: it is
 * derived again from the window holding the earliest of them (the checkpoints of the last derivation).
 */
import type { Reading } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import { Dec } from '../../rating/money.js';
import { rateWindow, RatingError, type Charges, type Coverage, type MeterInterval } from '../../rating/index.js';
import { carriedIntoCycle, historyReadsOf, needsHistory, NOTHING_CARRIED, type CarriedIntoCycle, type CarriedIntoWindow, type HistoryReads } from '../charges/rating-history.js';
import { CurrencyMismatch, NoTariffAssigned } from '../domain-errors.js';
import type { CommittedReading, ReadingsRepository } from '../readings/readings.repository.js';
import type { AccountMeters, BillingRepository } from './billing.repository.js';
import { LATE_DATA_MARGIN_MS } from './billing.service.js';
import { cycleContaining, cycleDays, type BillingCycle } from './cycles.js';
import { cycleInService } from './rate-cycle.js';
import { serviceWindow, type ServiceSpan } from './service-span.js';
import type { MeterTariffs, TariffsRepository } from '../tariffs/tariffs.repository.js';

const ACTUAL = 1;
const ESTIMATED = 2;

interface MeterCycle {
  meterId: string;
  cycle: BillingCycle;
  intervalSeconds: number;
  starts: Float64Array;
  imports: Float64Array;
  exports: Float64Array;
  /** reactive energy (mvarh); NaN: not measured */
  reactiveImports: Float64Array;
  reactiveExports: Float64Array;
  quality: Uint8Array;
  n: number;
  /** increments on every change */
  version: number;
  /** set while the initial load runs; readings committed meanwhile wait in `pending` */
  loading: Promise<void> | null;
  pending: Reading[] | null;
  memo: { key: string; carried: CarriedIntoWindow; charges: Charges } | null;
}

/** What is carried into a meter's open cycle (see ../charges/rating-history.ts), and the readings it reflects. */
interface KeptCarried {
  /** the cycle, the account's zone and billing day, the meter's interval, service span and tariff timeline it was derived for */
  key: string;
  value: CarriedIntoCycle;
  /** database time: every reading before the cycle received (received_at) before this instant is reflected */
  since: number;
  /** readings before the cycle committed after `since` that are reflected too (their signatures) */
  seen: ReadonlySet<string>;
}

export interface OpenCycleStoreOptions {
  /** meters kept in memory at most */
  capacity: number;
  /** true when this process's gateway feeds onCommitted; false: every request reads the database */
  live: boolean;
}

export class OpenCycleStore {
  private readonly meters = new Map<string, MeterCycle>();
  /** what is carried into each meter's open cycle, least recently used first */
  private readonly carried = new Map<string, KeptCarried>();

  constructor(readonly readings: ReadingsRepository, readonly opts: OpenCycleStoreOptions) {}

  get size(): number {
    return this.meters.size;
  }

  /**
   * The gateway's hook: readings just committed (stored, or actual replacing an estimate). Synchronous.
   * Readings before the cycle are found by the query of each request (see RunningChargesService).
   */
  onCommitted(readings: Reading[]): void {
    for (const r of readings) {
      const entry = this.meters.get(r.meterId);
      if (!entry || r.intervalStart >= entry.cycle.to || r.intervalStart < entry.cycle.from) continue;
      if (entry.pending) entry.pending.push(r);
      else apply(entry, r);
    }
  }

  /** Each meter's intervals of the cycle, loading the meters not held (one query for all of them). */
  async cycles(meters: { id: string; intervalSeconds: number }[], cycle: BillingCycle): Promise<MeterCycle[]> {
    const result = new Array<MeterCycle>(meters.length);
    const toLoad: { i: number; entry: MeterCycle }[] = [];
    const waits: Promise<void>[] = [];
    meters.forEach((meter, i) => {
      let entry = this.opts.live ? this.meters.get(meter.id) : undefined;
      if (entry && (entry.cycle.from !== cycle.from || entry.cycle.to !== cycle.to || entry.intervalSeconds !== meter.intervalSeconds)) {
        if (!entry.loading) this.meters.delete(meter.id);
        entry = undefined;
      }
      if (entry) {
        // Most recently used last.
        this.meters.delete(meter.id);
        this.meters.set(meter.id, entry);
        if (entry.loading) waits.push(entry.loading);
      } else {
        entry = emptyEntry(meter.id, cycle, meter.intervalSeconds);
        // Registered before the query starts, so a commit after the query's snapshot is not lost.
        if (this.opts.live) this.meters.set(meter.id, entry);
        toLoad.push({ i, entry });
      }
      result[i] = entry;
    });
    if (toLoad.length) {
      const load = this.load(toLoad.map((t) => t.entry));
      for (const { entry } of toLoad) entry.loading = load;
      waits.push(load);
    }
    await Promise.all(waits);
    this.evict();
    return result;
  }

  private async load(entries: MeterCycle[]): Promise<void> {
    try {
      const loaded = await this.readings.windows(
        entries.map((e) => ({ meterId: e.meterId, from: e.cycle.from, to: e.cycle.to, intervalSeconds: e.intervalSeconds })),
      );
      entries.forEach((entry, k) => {
        fill(entry, loaded[k]);
        const pending = entry.pending ?? [];
        entry.pending = null;
        entry.loading = null;
        for (const r of pending) apply(entry, r);
      });
    } catch (err) {
      for (const entry of entries) if (this.meters.get(entry.meterId) === entry) this.meters.delete(entry.meterId);
      throw err;
    }
  }

  /** What is kept carried into the meter's open cycle, if anything. */
  carriedOf(meterId: string): KeptCarried | undefined {
    return this.carried.get(meterId);
  }

  /** Keeps what is carried into the meter's open cycle (at most `capacity` meters, least recently used evicted). */
  keepCarried(meterId: string, kept: KeptCarried): void {
    this.carried.delete(meterId);
    this.carried.set(meterId, kept);
    for (const id of this.carried.keys()) {
      if (this.carried.size <= this.opts.capacity) break;
      this.carried.delete(id);
    }
  }

  forgetCarried(meterId: string): void {
    this.carried.delete(meterId);
  }

  private evict(): void {
    if (this.meters.size <= this.opts.capacity) return;
    for (const [id, entry] of this.meters) {
      if (this.meters.size <= this.opts.capacity) break;
      if (!entry.loading) this.meters.delete(id);
    }
  }
}

function emptyEntry(meterId: string, cycle: BillingCycle, intervalSeconds: number): MeterCycle {
  return {
    meterId, cycle, intervalSeconds,
    starts: new Float64Array(0), imports: new Float64Array(0), exports: new Float64Array(0), quality: new Uint8Array(0), n: 0,
    reactiveImports: new Float64Array(0), reactiveExports: new Float64Array(0),
    version: 0, loading: null, pending: [], memo: null,
  };
}

function fill(entry: MeterCycle, intervals: MeterInterval[]): void {
  const n = intervals.length;
  const capacity = n + 64;
  entry.starts = new Float64Array(capacity);
  entry.imports = new Float64Array(capacity);
  entry.exports = new Float64Array(capacity);
  entry.reactiveImports = new Float64Array(capacity);
  entry.reactiveExports = new Float64Array(capacity);
  entry.quality = new Uint8Array(capacity);
  intervals.forEach((r, k) => {
    entry.starts[k] = r.intervalStart;
    entry.imports[k] = Number(r.importMwh);
    entry.exports[k] = Number(r.exportMwh);
    entry.reactiveImports[k] = r.reactiveImportMvarh == null ? Number.NaN : Number(r.reactiveImportMvarh);
    entry.reactiveExports[k] = r.reactiveExportMvarh == null ? Number.NaN : Number(r.reactiveExportMvarh);
    entry.quality[k] = r.quality === 'actual' ? ACTUAL : ESTIMATED;
  });
  entry.n = n;
  entry.version++;
}

/** Applies a committed reading as the database did: insert, or an actual replacing an estimate. */
function apply(entry: MeterCycle, r: Reading): void {
  const quality = r.quality === 'actual' ? ACTUAL : ESTIMATED;
  let lo = 0;
  let hi = entry.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entry.starts[mid] < r.intervalStart) lo = mid + 1;
    else hi = mid;
  }
  const reactiveImport = r.reactiveImportMvarh ?? Number.NaN;
  const reactiveExport = r.reactiveExportMvarh ?? Number.NaN;
  if (lo < entry.n && entry.starts[lo] === r.intervalStart) {
    // A resend of the same reading that adds reactive energy completes it (as ingest_readings does).
    if (entry.quality[lo] === quality && entry.imports[lo] === r.importMwh && entry.exports[lo] === r.exportMwh) {
      const addsImport = Number.isNaN(entry.reactiveImports[lo]) && !Number.isNaN(reactiveImport);
      const addsExport = Number.isNaN(entry.reactiveExports[lo]) && !Number.isNaN(reactiveExport);
      if (addsImport) entry.reactiveImports[lo] = reactiveImport;
      if (addsExport) entry.reactiveExports[lo] = reactiveExport;
      if (addsImport || addsExport) entry.version++;
      return;
    }
    // Only an actual replaces an estimate; anything else is a replay of what is already held.
    if (entry.quality[lo] !== ESTIMATED || quality !== ACTUAL) return;
    entry.imports[lo] = r.importMwh;
    entry.exports[lo] = r.exportMwh;
    entry.reactiveImports[lo] = reactiveImport;
    entry.reactiveExports[lo] = reactiveExport;
    entry.quality[lo] = ACTUAL;
    entry.version++;
    return;
  }
  if (entry.n === entry.starts.length) grow(entry);
  entry.starts.copyWithin(lo + 1, lo, entry.n);
  entry.imports.copyWithin(lo + 1, lo, entry.n);
  entry.exports.copyWithin(lo + 1, lo, entry.n);
  entry.reactiveImports.copyWithin(lo + 1, lo, entry.n);
  entry.reactiveExports.copyWithin(lo + 1, lo, entry.n);
  entry.quality.copyWithin(lo + 1, lo, entry.n);
  entry.starts[lo] = r.intervalStart;
  entry.imports[lo] = r.importMwh;
  entry.exports[lo] = r.exportMwh;
  entry.reactiveImports[lo] = reactiveImport;
  entry.reactiveExports[lo] = reactiveExport;
  entry.quality[lo] = quality;
  entry.n++;
  entry.version++;
}

function grow(entry: MeterCycle): void {
  const capacity = Math.max(64, entry.starts.length * 2);
  const copy = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T) => {
    const b = make(capacity);
    b.set(a);
    return b;
  };
  entry.starts = copy(entry.starts, (n) => new Float64Array(n));
  entry.imports = copy(entry.imports, (n) => new Float64Array(n));
  entry.exports = copy(entry.exports, (n) => new Float64Array(n));
  entry.reactiveImports = copy(entry.reactiveImports, (n) => new Float64Array(n));
  entry.reactiveExports = copy(entry.reactiveExports, (n) => new Float64Array(n));
  entry.quality = copy(entry.quality, (n) => new Uint8Array(n));
}

/** The held intervals whose start lies in `window` (a part of the entry's cycle). */
function intervalsOf(entry: MeterCycle, window: BillingCycle): MeterInterval[] {
  const out: MeterInterval[] = [];
  for (let k = 0; k < entry.n; k++) {
    if (entry.starts[k] < window.from || entry.starts[k] >= window.to) continue;
    out.push({
      intervalStart: entry.starts[k],
      intervalSeconds: entry.intervalSeconds,
      importMwh: entry.imports[k],
      exportMwh: entry.exports[k],
      ...(Number.isNaN(entry.reactiveImports[k]) ? {} : { reactiveImportMvarh: entry.reactiveImports[k] }),
      ...(Number.isNaN(entry.reactiveExports[k]) ? {} : { reactiveExportMvarh: entry.reactiveExports[k] }),
      quality: entry.quality[k] === ACTUAL ? 'actual' : 'estimated',
    });
  }
  return out;
}

export interface RunningMeterCharges extends Omit<Charges, 'tariffIds'> {
  meterId: string;
  /** the open cycle */
  from: string;
  to: string;
  /** the part of the cycle in service, when a service start or end cuts it (as on the bill's meter section) */
  inService?: { from: string; to: string };
  tariffId: string;
  tariffIds: string[];
}

/** A meter of the account, with its explicit service span. */
type AccountMeter = AccountMeters['meters'][number];

export interface RunningCharges {
  accountId: string;
  timezone: string;
  billingDay: number;
  cycle: { from: string; to: string; firstDay: string; lastDay: string; days: number };
  currency: string | null;
  meters: RunningMeterCharges[];
  subtotal: string;
  taxes: string;
  total: string;
  asOf: string | null;
  coverage: Coverage;
}

export class RunningChargesService {
  /** the readings before the open cycle, for what a ratchet or a carrying metering mode carries into it */
  private readonly history: HistoryReads;

  constructor(
    private readonly accounts: BillingRepository,
    private readonly tariffs: TariffsRepository,
    private readonly store: OpenCycleStore,
    private readonly clock: () => number = Date.now,
  ) {
    this.history = historyReadsOf(store.readings);
  }

  /** The open cycle's running charges, or null when the account does not exist. */
  async forAccount(accountId: string): Promise<RunningCharges | null> {
    const account = await this.accounts.accountMeters(accountId);
    if (!account) return null;
    const { timezone, billingDay } = account;
    const cycle = cycleContaining(this.clock(), timezone, billingDay);
    // As at close: a meter is rated when its service span overlaps the cycle, over the part in service.
    const meters = account.meters.filter((m) => serviceWindow(cycle, m.service) !== null);
    // Meters with something kept are checked beside the tariff read; the others, when their tariffs carry, after it.
    const kept = meters.map((m) => this.store.carriedOf(m.id));
    const [tariffs, cycles, checked] = await Promise.all([
      this.tariffs.forMeters(meters.map((m) => m.id)),
      this.store.cycles(meters, cycle),
      kept.some((k) => k !== undefined) ? this.committedSinceKept(meters, kept, cycle) : null,
    ]);
    const commits = await this.commitsBefore(meters, tariffs, { timezone, billingDay }, cycle, checked);
    const carried = await Promise.all(meters.map((m) => this.carriedInto(m, tariffs.get(m.id)!, { timezone, billingDay }, cycle, commits)));
    const charges = cycles.map((entry, i) => rateMeter(entry, tariffs.get(meters[i].id)!, cycle, meters[i].service, carried[i]));
    const currencies = [...new Set(charges.map((c) => c.currency))];
    if (currencies.length > 1) throw new CurrencyMismatch(currencies);
    const minorUnit = charges.length ? minorUnitOf(tariffs.get(meters[0].id)!) : 2;
    const sum = (values: string[]) => values.reduce((t, v) => t.plus(v), new Dec(0));
    const subtotal = sum(charges.map((c) => c.subtotal));
    const taxes = sum(charges.map((c) => c.taxes));
    const coverage: Coverage = { expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 };
    for (const c of charges) for (const k of Object.keys(coverage) as (keyof Coverage)[]) coverage[k] += c.coverage[k];
    const asOf = charges.reduce<string | null>((latest, c) => (c.asOf !== null && (latest === null || Date.parse(c.asOf) > Date.parse(latest)) ? c.asOf : latest), null);
    return {
      accountId,
      timezone,
      billingDay,
      cycle: { from: isoUtc(cycle.from), to: isoUtc(cycle.to), ...cycleDays(cycle, timezone) },
      currency: currencies[0] ?? null,
      meters: charges.map((c, i) => {
        const { tariffIds, ...rest } = c;
        const window = serviceWindow(cycle, meters[i].service)!;
        const partial = window.from !== cycle.from || window.to !== cycle.to;
        return {
          meterId: meters[i].id,
          from: isoUtc(cycle.from),
          to: isoUtc(cycle.to),
          ...(partial ? { inService: { from: isoUtc(window.from), to: isoUtc(window.to) } } : {}),
          ...rest,
          tariffId: c.pieces[c.pieces.length - 1]?.tariffId ?? tariffIds[tariffIds.length - 1],
          tariffIds,
        };
      }),
      subtotal: subtotal.toFixed(minorUnit),
      taxes: taxes.toFixed(minorUnit),
      total: subtotal.plus(taxes).toFixed(minorUnit),
      asOf,
      coverage,
    };
  }

  /**
   * The commit horizon (see ReadingsRepository.commitHorizon), then, for each meter with something kept,
   * the readings before the cycle committed since it was derived.
   */
  private async committedSinceKept(meters: { id: string }[], kept: (KeptCarried | undefined)[], cycle: BillingCycle): Promise<Checked> {
    // The horizon first: what the query after it does not see is committed after it.
    const horizon = await this.store.readings.commitHorizon(LATE_DATA_MARGIN_MS);
    const checked = meters.flatMap((m, i) => (kept[i] ? [{ meterId: m.id, kept: kept[i]! }] : []));
    const readings = await this.store.readings.committedSince(checked.map((c) => ({ meterId: c.meterId, since: c.kept.since })), cycle.from);
    const byMeter = new Map(checked.map((c) => [c.meterId, { kept: c.kept, readings: [] as CommittedReading[] }]));
    for (const r of readings) byMeter.get(checked[r.k].meterId)!.readings.push(r);
    return { horizon, meters: byMeter };
  }

  /**
   * For the meters whose tariffs carry something into the cycle (a ratchet, a carrying metering mode): the
   * commit horizon, and what is kept for them (when derived for the same cycle, account and timeline) with
   * the readings committed since. Null when no meter needs it.
   */
  private async commitsBefore(
    meters: AccountMeter[],
    tariffs: Map<string, MeterTariffs>,
    account: { timezone: string; billingDay: number },
    cycle: BillingCycle,
    checked: Checked | null,
  ): Promise<Checked | null> {
    const carrying = meters.filter((m) => {
      const t = tariffs.get(m.id)!;
      const carries = t.hasAssignment && needsHistory(t.timeline, cycle);
      if (!carries && checked?.meters.has(m.id)) this.store.forgetCarried(m.id);
      return carries;
    });
    if (!carrying.length) return null;
    const horizon = checked?.horizon ?? (await this.store.readings.commitHorizon(LATE_DATA_MARGIN_MS));
    const byMeter = new Map(
      carrying.map((m) => {
        const found = checked?.meters.get(m.id);
        const valid = found && found.kept?.key === carriedKey(m, tariffs.get(m.id)!, account, cycle);
        return [m.id, valid ? found : { kept: undefined, readings: [] }];
      }),
    );
    return { horizon, meters: byMeter };
  }

  /**
   * What is carried into the open cycle: nothing (no read) unless a tariff of the cycle has a ratchet or
   * carries across windows; then the kept state when no reading before the cycle was committed since it
   * was derived, else derived again (from the window holding the earliest such reading when possible).
   * Derived as the close derives it: nothing before the meter's explicit service start is carried.
   *
   * Exact because a reading's received_at is its transaction's start: a reading that neither the query of
   * committed readings nor the derivation after it saw was committed after the horizon was read, so
   * received at or after the horizon, the `since` kept. Readings found after `since` that were seen
   * (`seen`) are not changes the next time.
   */
  private async carriedInto(
    meter: AccountMeter,
    tariffs: MeterTariffs,
    account: { timezone: string; billingDay: number },
    cycle: BillingCycle,
    commits: Checked | null,
  ): Promise<CarriedIntoWindow> {
    if (!tariffs.hasAssignment) return NOTHING_CARRIED;
    const rated = { meterId: meter.id, intervalSeconds: meter.intervalSeconds, ...account, tariffTimeline: tariffs.timeline, serviceStart: meter.service.start };
    const found = commits?.meters.get(meter.id);
    if (!commits || !found) return carriedIntoCycle(this.history, rated, cycle);
    const { kept, readings } = found;
    const changed = kept ? readings.filter((r) => !kept.seen.has(r.signature)) : [];
    let value: CarriedIntoCycle;
    if (kept && !changed.length) value = kept.value;
    else {
      const checkpoints = kept?.value.checkpoints;
      const changedFrom = Math.min(...changed.map((r) => r.intervalStart));
      value = await carriedIntoCycle(this.history, rated, cycle, checkpoints ? { checkpoints, changedFrom } : undefined);
    }
    this.store.keepCarried(meter.id, {
      key: carriedKey(meter, tariffs, account, cycle),
      value,
      since: commits.horizon,
      seen: new Set(readings.filter((r) => r.receivedAt > commits.horizon).map((r) => r.signature)),
    });
    return value;
  }
}

/** The readings before the open cycle committed since what is kept for each meter was derived. */
interface Checked {
  /** read before them: every reading they and the derivations after them do not see is received after it */
  horizon: number;
  meters: Map<string, { kept: KeptCarried | undefined; readings: CommittedReading[] }>;
}

function carriedKey(meter: { intervalSeconds: number; service: ServiceSpan }, tariffs: MeterTariffs, account: { timezone: string; billingDay: number }, cycle: BillingCycle): string {
  return `${cycle.from}|${cycle.to}|${account.timezone}|${account.billingDay}|${meter.intervalSeconds}|${spanKey(meter.service)}|${tariffs.key}`;
}

function spanKey(service: ServiceSpan): string {
  return `${service.start ?? ''}-${service.end ?? ''}`;
}

/** Rates the meter's part of the cycle in service as the close does (./rate-cycle.ts), memoized. */
function rateMeter(entry: MeterCycle, tariffs: MeterTariffs, cycle: BillingCycle, service: ServiceSpan, carried: CarriedIntoWindow): Charges {
  if (!tariffs.hasAssignment) throw new NoTariffAssigned(entry.meterId);
  const key = `${entry.version}|${tariffs.key}|${cycle.from}|${spanKey(service)}`;
  if (entry.memo?.key === key && entry.memo.carried === carried) return entry.memo.charges;
  let charges: Charges;
  try {
    const { window, rating } = cycleInService({ cycle, service, tariffTimeline: tariffs.timeline, carried });
    charges = rateWindow({ ...rating, intervals: intervalsOf(entry, window), meterIntervalSeconds: entry.intervalSeconds });
  } catch (err) {
    // The rating core's error, naming the meter (the error handler answers it).
    if (err instanceof RatingError) throw new RatingError(err.code, `meter "${entry.meterId}": ${err.message}`, err.details);
    throw err;
  }
  entry.memo = { key, carried, charges };
  return charges;
}

function minorUnitOf(tariffs: MeterTariffs): number {
  return tariffs.timeline[tariffs.timeline.length - 1]?.tariff.currency.minorUnit ?? 2;
}
