/**
 * The bill as stored and served: the meters' charges in the contract's line format, adjustment lines
 * correcting earlier bills, totals, coverage, the tariff versions used, validation warnings and the
 * content hash. Pure: the billing service computes the parts, this module assembles, sums and renders.
 *
 * Totals: subtotal = sum of the meters' subtotals; taxes = sum of the meters' taxes (each meter's taxes are
 * its subtotal x rate, rounded half-up, exactly as the rating core computes them); adjustmentsTotal = sum
 * of the adjustment amounts (each already tax-inclusive: a correction is priced with the corrected
 * period's tariffs and taxes and is not taxed again); total = subtotal + taxes + adjustmentsTotal.
 */
import { isoUtc } from '../../common/time.js';
import type { ChargeLine, Coverage, MeteringState, RatedPiece, WindowMetering } from '../../rating/index.js';
import { Dec } from '../../rating/money.js';
import { contentHash } from './canonical-json.js';
import { cycleDays, type BillingCycle } from './cycles.js';
import type { TariffVersionRef } from '../tariffs/tariffs.repository.js';
import type { ValidationWarning, WarningCode } from './validation.js';

export interface MeterBillSection {
  meterId: string;
  intervalSeconds: number;
  /** the tariff in effect at the end of the cycle */
  tariffId: string;
  tariffIds: string[];
  tariffVersions: TariffVersionRef[];
  lines: ChargeLine[];
  subtotal: string;
  taxes: string;
  total: string;
  /** end of the latest interval rated (ISO 8601 UTC), null when the meter had none */
  asOf: string | null;
  coverage: Coverage;
  pieces: RatedPiece[];
  /** intervals this close estimated (stored as quality 'estimated'), by method */
  estimated: { linear: number; profile: number };
  warnings: ValidationWarning[];
  warningsOmitted: Partial<Record<WarningCode, number>>;
  /** the part of the cycle the meter was in service, when it started or ended service in the cycle (prorated) */
  inService?: { from: string; to: string };
  /** the rating core's notes (the tariffs' free-text attributes, what could not be considered), when any */
  notes?: string[];
  /**
   * Under a tariff that carries across cycles (net metering, a net billing balance, an annual minimum):
   * the state carried in and out (kWh banks, running net, money balance), and per period what the cycle
   * earned and applied (the rating core's `metering`)
   */
  metering?: WindowMetering;
}

export interface AdjustmentLine {
  type: 'adjustment';
  meterId: string;
  reason: 'late_data';
  /** the bill whose charges for this meter are corrected */
  correctsBillId: string;
  /** the corrected billing cycle */
  period: { from: string; to: string };
  /** what has been billed for this meter and period so far: its total on that bill plus earlier adjustments */
  previouslyBilled: string;
  /** the period re-rated from the readings stored now */
  rerated: { subtotal: string; taxes: string; total: string; coverage: Coverage; tariffVersions: TariffVersionRef[] };
  /** rerated.total - previouslyBilled */
  amount: string;
  /**
   * Under a tariff that carries across cycles: the state the period carries out as billed so far (null when
   * not stated) and as re-rated, and whether it changed (the next cycles then start from the re-rated state)
   */
  carriedOut?: { billed: MeteringState | null; rerated: MeteringState; changed: boolean };
}

export interface BillCycle {
  /** first instant, ISO 8601 UTC: local midnight of the first day in the account's zone */
  from: string;
  /** first instant after the cycle */
  to: string;
  /** local calendar days in the account's zone */
  firstDay: string;
  lastDay: string;
  days: number;
}

export interface BillDocument {
  id: string;
  accountId: string;
  timezone: string;
  billingDay: number;
  cycle: BillCycle;
  /** local date (account zone) on which the bill was closed */
  billDate: string;
  /** the instant the closing transaction began (ISO 8601 UTC) */
  closedAt: string;
  run: { id: string; asOf: string; cutoff: string; graceDays: number };
  currency: string;
  meters: MeterBillSection[];
  adjustments: AdjustmentLine[];
  subtotal: string;
  taxes: string;
  adjustmentsTotal: string;
  total: string;
  /** latest meter asOf: the end of the latest interval included */
  asOf: string | null;
  coverage: Coverage;
  /** a re-bill: its revision (n-th re-bill of the cycle), the bill it supersedes and the credit note that reversed that bill */
  revision?: number;
  supersedes?: string;
  creditNoteId?: string;
}

/** One reversal on a credit note: a voided bill's own charges, or an adjustment that corrected them later. */
export interface ReversalLine {
  type: 'reversal';
  /** 'charges': the voided bill's meter charges (subtotal and taxes); 'adjustment': a later adjustment of them */
  what: 'charges' | 'adjustment';
  /** the document the reversed amount was billed on */
  billId: string;
  meterId?: string;
  /** the negated amount */
  amount: string;
}

/**
 * A credit note: reverses what a voided bill charged for its cycle: its meters' charges and every later
 * adjustment of them. Adjustment lines the voided bill itself carried (corrections of earlier cycles)
 * stand. total = subtotal + taxes + adjustmentsTotal, all negated amounts.
 */
export interface CreditNoteDocument {
  id: string;
  kind: 'credit_note';
  accountId: string;
  timezone: string;
  billingDay: number;
  cycle: BillCycle;
  billDate: string;
  closedAt: string;
  currency: string;
  reverses: string;
  /** content hash of the voided bill */
  reversesContentHash: string;
  rebillId: string;
  reason: string | null;
  lines: ReversalLine[];
  subtotal: string;
  taxes: string;
  adjustmentsTotal: string;
  total: string;
}

/** The credit note of a voided bill and its content hash. */
export function creditNote(input: {
  id: string;
  bill: BillDocument;
  billContentHash: string;
  laterAdjustments: { billId: string; meterId: string; amount: string }[];
  rebillId: string;
  reason: string | null;
  closedAt: number;
  billDate: string;
  minorUnit: number;
}): { document: CreditNoteDocument; contentHash: string } {
  const { bill, minorUnit } = input;
  const neg = (v: string | Dec) => new Dec(v).neg().toFixed(minorUnit);
  const lines: ReversalLine[] = [
    { type: 'reversal', what: 'charges', billId: bill.id, amount: neg(new Dec(bill.subtotal).plus(bill.taxes)) },
    ...input.laterAdjustments.map((a): ReversalLine => ({ type: 'reversal', what: 'adjustment', billId: a.billId, meterId: a.meterId, amount: neg(a.amount) })),
  ];
  const adjustments = input.laterAdjustments.reduce((t, a) => t.plus(a.amount), new Dec(0));
  const document: CreditNoteDocument = {
    id: input.id,
    kind: 'credit_note',
    accountId: bill.accountId,
    timezone: bill.timezone,
    billingDay: bill.billingDay,
    cycle: bill.cycle,
    billDate: input.billDate,
    closedAt: isoUtc(input.closedAt),
    currency: bill.currency,
    reverses: bill.id,
    reversesContentHash: input.billContentHash,
    rebillId: input.rebillId,
    reason: input.reason,
    lines,
    subtotal: neg(bill.subtotal),
    taxes: neg(bill.taxes),
    adjustmentsTotal: neg(adjustments),
    total: neg(new Dec(bill.subtotal).plus(bill.taxes).plus(adjustments)),
  };
  return { document, contentHash: contentHash(document) };
}

export type BillHeader = Omit<BillDocument, 'meters' | 'adjustments' | 'subtotal' | 'taxes' | 'adjustmentsTotal' | 'total' | 'asOf' | 'coverage'>;

/**
 * The header of an account's bill for a cycle: its id (`{accountId}.{firstDay}`), the cycle in UTC and as
 * local days of the account's zone, the bill date (the local date of `closedAt`, given), the run.
 */
export function billHeader(
  account: { accountId: string; timezone: string; billingDay: number },
  cycle: BillingCycle,
  run: { id: string; asOf: string; cutoff: string; graceDays: number },
  closedAt: number,
  billDate: string,
  currency: string,
): BillHeader {
  const days = cycleDays(cycle, account.timezone);
  return {
    id: `${account.accountId}.${days.firstDay}`,
    accountId: account.accountId,
    timezone: account.timezone,
    billingDay: account.billingDay,
    cycle: { from: isoUtc(cycle.from), to: isoUtc(cycle.to), ...days },
    billDate,
    closedAt: isoUtc(closedAt),
    run,
    currency,
  };
}

/** Assembles a bill and its content hash (SHA-256 of the canonical JSON of the document). */
export function assembleBill(header: BillHeader, minorUnit: number, meters: MeterBillSection[], adjustments: AdjustmentLine[]): { document: BillDocument; contentHash: string } {
  const sum = (values: string[]) => values.reduce((total, v) => total.plus(v), new Dec(0));
  const subtotal = sum(meters.map((m) => m.subtotal));
  const taxes = sum(meters.map((m) => m.taxes));
  const adjustmentsTotal = sum(adjustments.map((a) => a.amount));
  const coverage: Coverage = { expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 };
  for (const m of meters) for (const k of Object.keys(coverage) as (keyof Coverage)[]) coverage[k] += m.coverage[k];
  const asOf = meters.reduce<string | null>((latest, m) => (m.asOf !== null && (latest === null || Date.parse(m.asOf) > Date.parse(latest)) ? m.asOf : latest), null);
  const document: BillDocument = {
    ...header,
    meters,
    adjustments,
    subtotal: subtotal.toFixed(minorUnit),
    taxes: taxes.toFixed(minorUnit),
    adjustmentsTotal: adjustmentsTotal.toFixed(minorUnit),
    total: subtotal.plus(taxes).plus(adjustmentsTotal).toFixed(minorUnit),
    asOf,
    coverage,
  };
  return { document, contentHash: contentHash(document) };
}

/** a - b of two money strings, formatted to the minor unit. */
export function moneyDifference(a: string, b: string, minorUnit: number): string {
  return new Dec(a).minus(b).toFixed(minorUnit);
}

export function isZeroMoney(value: string): boolean {
  return new Dec(value).isZero();
}

const CSV_COLUMNS = [
  'bill_id', 'account_id', 'cycle_from', 'cycle_to', 'meter_id', 'type', 'name', 'period', 'tier', 'quantity', 'unit', 'rate',
  'amount', 'currency', 'tariff_id', 'corrects_bill_id', 'corrected_from', 'corrected_to',
] as const;

type CsvRow = Record<(typeof CSV_COLUMNS)[number], string>;

/**
 * The bill's lines as CSV (RFC 4180, CRLF line ends, a header row): every meter's charge lines (taxes
 * included), then the adjustment lines, then what each meter carried across cycles (meteringCsvRows).
 * Amounts are the same decimal strings as in the JSON bill; the `amount` column sums to the bill's total
 * (the carried quantities are stated in `quantity` and `unit`, never in `amount`).
 */
export function billLinesCsv(document: BillDocument | CreditNoteDocument): string {
  const rows: CsvRow[] = [];
  const base = { bill_id: document.id, account_id: document.accountId, cycle_from: document.cycle.from, cycle_to: document.cycle.to, currency: document.currency };
  const empty = { period: '', tier: '', quantity: '', unit: '', rate: '', tariff_id: '', corrected_from: '', corrected_to: '' };
  if ('kind' in document && document.kind === 'credit_note') {
    for (const r of document.lines) rows.push({ ...base, ...empty, meter_id: r.meterId ?? '', type: 'reversal', name: r.what, amount: r.amount, corrects_bill_id: r.billId });
    return [CSV_COLUMNS.join(','), ...rows.map((row) => CSV_COLUMNS.map((c) => csvField(row[c])).join(','))].join('\r\n') + '\r\n';
  }
  const bill = document as BillDocument;
  for (const meter of bill.meters) {
    for (const line of meter.lines) {
      const l = line as unknown as Record<string, unknown>;
      rows.push({
        ...base,
        meter_id: meter.meterId,
        type: line.type,
        name: text(l.name),
        period: text(l.period),
        tier: text(l.tier),
        quantity: text(l.quantity),
        unit: text(l.unit),
        rate: text(l.rate),
        amount: line.amount,
        tariff_id: text(l.tariffId),
        corrects_bill_id: '',
        corrected_from: '',
        corrected_to: '',
      });
    }
  }
  for (const a of bill.adjustments) {
    rows.push({
      ...base,
      meter_id: a.meterId,
      type: 'adjustment',
      name: a.reason,
      period: '',
      tier: '',
      quantity: '',
      unit: '',
      rate: '',
      amount: a.amount,
      tariff_id: '',
      corrects_bill_id: a.correctsBillId,
      corrected_from: a.period.from,
      corrected_to: a.period.to,
    });
  }
  for (const meter of bill.meters) if (meter.metering) rows.push(...meteringCsvRows(meter.metering, bill.currency).map((r) => ({ ...base, ...r, meter_id: meter.meterId })));
  for (const a of bill.adjustments)
    if (a.carriedOut) {
      const correction = { meter_id: a.meterId, corrects_bill_id: a.correctsBillId, corrected_from: a.period.from, corrected_to: a.period.to };
      if (a.carriedOut.billed) rows.push(...stateCsvRows(a.carriedOut.billed, 'carried_out_billed', bill.currency).map((r) => ({ ...base, ...r, ...correction })));
      rows.push(...stateCsvRows(a.carriedOut.rerated, 'carried_out_rerated', bill.currency).map((r) => ({ ...base, ...r, ...correction })));
    }
  const lines = [CSV_COLUMNS.join(','), ...rows.map((row) => CSV_COLUMNS.map((c) => csvField(row[c])).join(','))];
  return lines.join('\r\n') + '\r\n';
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

type MeteringRow = Omit<CsvRow, 'bill_id' | 'account_id' | 'cycle_from' | 'cycle_to' | 'meter_id' | 'currency'>;

function meteringRow(type: string, name: string, period: string, quantity: string, unit: string): MeteringRow {
  return { type, name, period, tier: '', quantity, unit, rate: '', amount: '', tariff_id: '', corrects_bill_id: '', corrected_from: '', corrected_to: '' };
}

/**
 * A meter's metering section as CSV rows, in the order a reader follows the carried quantities:
 * - `metering`: name the mode, unit the carry-over (`kWh`, `dollars`, empty), period `trueup` when the
 *   cycle settles the year.
 * - `bank` per TOU period (kWh): `carried_in` (kWh bank only), `import`, `export`, `billed` (at the buy
 *   rate), `surplus` (carried_in + export - import + billed; with money carry-over credited at the sell
 *   rate into the balance), then under a kWh bank `dropped` (a surplus in none of the bank's time-of-day
 *   slots) and `carried_out` (surplus - dropped; 0 in the true-up cycle, which settles the running net).
 * - `running_net` (kWh bank, kWh): `carried_in`, `net` (the cycle's export - import), `trueup` (the kWh paid
 *   at the true-up, in the true-up cycle), `carried_out` (carried_in + net floored at 0; 0 after a true-up).
 * - `balance` (money, unit the currency): `carried_in`, `earned`, `applied` (the `carryover` line),
 *   `rolled_over`, `paid_at_trueup` (the `trueup` line), `expired`, `carried_out`
 *   (carried_in + earned + rolled_over - applied - paid_at_trueup - expired = carried_out).
 * - `year_bills` (annual minimum, unit the currency): `carried_in`, `carried_out`, when either is not 0.
 */
export function meteringCsvRows(metering: WindowMetering, currency: string): MeteringRow[] {
  const rows: MeteringRow[] = [meteringRow('metering', metering.mode, metering.trueUp ? 'trueup' : '', '', metering.carryOver ?? '')];
  const kWhBank = metering.carryOver === 'kWh';
  for (const p of metering.periods ?? []) {
    const bank = (name: string, kWh: string) => rows.push(meteringRow('bank', name, p.period, kWh, 'kWh'));
    if (kWhBank) bank('carried_in', p.bankInKwh);
    bank('import', p.importKwh);
    bank('export', p.exportKwh);
    bank('billed', p.billedKwh);
    bank('surplus', p.surplusKwh);
    if (kWhBank) {
      bank('dropped', p.droppedKwh);
      bank('carried_out', banked(metering.carriedOut, p.period));
    }
  }
  if (kWhBank) {
    const net = (metering.periods ?? []).reduce((sum, p) => sum.plus(p.netKwh), new Dec(0));
    rows.push(meteringRow('running_net', 'carried_in', '', metering.carriedIn.runningNetKwh, 'kWh'));
    rows.push(meteringRow('running_net', 'net', '', net.toFixed(), 'kWh'));
    if (metering.trueUp) rows.push(meteringRow('running_net', 'trueup', '', metering.trueUpKwh ?? '0', 'kWh'));
    rows.push(meteringRow('running_net', 'carried_out', '', metering.carriedOut.runningNetKwh, 'kWh'));
  }
  const c = metering.credit;
  if (c)
    for (const [name, value] of [
      ['carried_in', c.balanceIn], ['earned', c.earned], ['applied', c.applied], ['rolled_over', c.rolledOver],
      ['paid_at_trueup', c.paidAtTrueUp], ['expired', c.expired], ['carried_out', c.balanceOut],
    ] as const)
      rows.push(meteringRow('balance', name, '', value, currency));
  if (!new Dec(metering.carriedIn.yearBills).isZero() || !new Dec(metering.carriedOut.yearBills).isZero()) {
    rows.push(meteringRow('year_bills', 'carried_in', '', metering.carriedIn.yearBills, currency));
    rows.push(meteringRow('year_bills', 'carried_out', '', metering.carriedOut.yearBills, currency));
  }
  return rows;
}

/**
 * A carried state on its own (what an adjustment says a corrected cycle carried out, as billed and as
 * re-rated), named `name`: a `bank` row per banked period, `running_net`, `balance`, and `year_bills` when
 * not 0.
 */
function stateCsvRows(state: MeteringState, name: string, currency: string): MeteringRow[] {
  return [
    ...state.banks.map((b) => meteringRow('bank', name, b.period, b.kWh, 'kWh')),
    meteringRow('running_net', name, '', state.runningNetKwh, 'kWh'),
    meteringRow('balance', name, '', state.creditBalance, currency),
    ...(new Dec(state.yearBills).isZero() ? [] : [meteringRow('year_bills', name, '', state.yearBills, currency)]),
  ];
}

/** The kWh a state banks for a period (0 when none). */
function banked(state: MeteringState, period: string): string {
  return state.banks.filter((b) => b.period === period).reduce((sum, b) => sum.plus(b.kWh), new Dec(0)).toFixed();
}
