/**
 * Metering modes: how a tariff treats the import and export of a meter with generation, and what it
 * carries from one billing window to the next (CONTRACT.md section 4, "Net metering and net billing").
 * The reference for every mode is NREL SAM's `utilityrate5` metering options; the SAM-specific rules live
 * in `sam-rules.ts`.
 */
import type { TariffDocument } from '../tariff.schema.js';

/**
 * - `net_billing_instantaneous` (URDB "Net Billing Instantaneous", and no `dgrules`; SAM option 2 with
 *   per-step readings): import billed gross, export credited per interval at the sell rate.
 * - `net_billing_hourly` (URDB "Net Billing Hourly"): import and export netted within each local clock
 *   hour first, then as instantaneous.
 * - `buy_all_sell_all` (URDB "Buy All Sell All", SAM option 4): every import bought, every export sold,
 *   never netted (the readings must carry both registers).
 * - `net_metering` (URDB "Net Metering", SAM options 0 and 1): netting per TOU period over the window,
 *   surplus carried to later windows as kWh or as money, settled at the true-up.
 */
export type MeteringMode = 'net_billing_instantaneous' | 'net_billing_hourly' | 'buy_all_sell_all' | 'net_metering';

export interface NetMeteringOptions {
  /** `kWh`: a bank per TOU period (SAM option 0). `dollars`: surplus x sell into a money balance (SAM option 1). */
  carryOver: 'kWh' | 'dollars';
  /** Local calendar month (1-12) of the window that settles the year; default 12. */
  trueUpMonth: number;
  /** Price per kWh paid at the true-up for the surplus (kWh carry-over); default "0". */
  trueUpSellRate: string;
  /** The true-up value is not paid but kept as a money credit for later energy charges; default false. */
  trueUpCreditRollover: boolean;
}

export interface NetBillingOptions {
  /** `dollars`: the window's export credits are carried as a money balance (SAM option 3). */
  carryOver: 'dollars';
  /** Local calendar month (1-12) of the window that pays out (or forfeits) the balance; default 12. */
  trueUpMonth: number;
  /** The balance left at the true-up is forfeited instead of paid; default false. */
  creditExpiresAtTrueUp: boolean;
  /** The window's own credits also offset its own energy charges (after the carried balance); default false. */
  applyCreditInMonthEarned: boolean;
}

export interface Metering {
  mode: MeteringMode;
  /** With mode `net_metering`. */
  netMetering?: NetMeteringOptions;
  /** With the net billing modes, when credits are carried. */
  netBilling?: NetBillingOptions;
  /** Minimum of the settlement year's bills (URDB `annualmincharge`), settled in the true-up window. */
  annualMinimum?: string;
}

/** The URDB `dgrules` values and the mode each one means. */
export const DG_RULES: Record<string, MeteringMode> = {
  'Net Metering': 'net_metering',
  'Net Billing Instantaneous': 'net_billing_instantaneous',
  'Net Billing Hourly': 'net_billing_hourly',
  'Buy All Sell All': 'buy_all_sell_all',
};

/** The options as a tariff document or an import request states them (every field optional). */
export interface StatedMetering {
  /** The mode by name (a native document's `meteringMode`). */
  mode?: MeteringMode;
  /** URDB `dgrules`, when no `mode` is given. */
  dgRules?: string;
  netMetering?: Partial<Omit<NetMeteringOptions, 'trueUpSellRate'>> & { trueUpSellRate?: string | number };
  netBilling?: Partial<NetBillingOptions>;
  annualMinimum?: string | number;
}

/**
 * The metering, with defaults: nothing stated is net billing instantaneous; `netMetering` (or the mode
 * `net_metering`, or `dgrules` "Net Metering") is net metering with a kWh bank, true-up in December at
 * 0 $/kWh, no roll-over; `netBilling` carries credits as dollars, true-up in December, paid out, applied
 * from the next window.
 */
export function resolveMetering(stated: StatedMetering): Metering {
  const named = stated.mode ?? (stated.dgRules !== undefined ? DG_RULES[stated.dgRules] : undefined);
  const mode: MeteringMode = stated.netMetering ? 'net_metering' : (named ?? 'net_billing_instantaneous');
  const metering: Metering = { mode };
  if (mode === 'net_metering') {
    const nm = stated.netMetering ?? {};
    metering.netMetering = {
      carryOver: nm.carryOver ?? 'kWh',
      trueUpMonth: nm.trueUpMonth ?? 12,
      trueUpSellRate: String(nm.trueUpSellRate ?? '0'),
      trueUpCreditRollover: nm.trueUpCreditRollover ?? false,
    };
  } else if (stated.netBilling) {
    const nb = stated.netBilling;
    metering.netBilling = {
      carryOver: 'dollars',
      trueUpMonth: nb.trueUpMonth ?? 12,
      creditExpiresAtTrueUp: nb.creditExpiresAtTrueUp ?? false,
      applyCreditInMonthEarned: nb.applyCreditInMonthEarned ?? false,
    };
  }
  if (stated.annualMinimum !== undefined && String(stated.annualMinimum) !== '0') metering.annualMinimum = String(stated.annualMinimum);
  return metering;
}

const ofDocument = new WeakMap<TariffDocument, Metering>();

/** The metering a tariff document states (`meteringMode`, `netMetering`, `netBilling`, `annualMinimumCharge`); cached per document. */
export function meteringOfTariff(document: TariffDocument): Metering {
  let metering = ofDocument.get(document);
  if (!metering) {
    metering = resolveMetering({
      mode: document.meteringMode,
      netMetering: document.netMetering,
      netBilling: document.netBilling,
      annualMinimum: document.annualMinimumCharge?.amount,
    });
    ofDocument.set(document, metering);
  }
  return metering;
}

/** The month (1-12) whose window settles the year: the true-up month, or December without one. */
export function settlementMonth(metering: Metering): number {
  return metering.netMetering?.trueUpMonth ?? metering.netBilling?.trueUpMonth ?? 12;
}

/** Whether windows depend on the windows before them (anything is carried or settled across windows). */
export function carriesAcrossWindows(metering: Metering): boolean {
  return metering.mode === 'net_metering' || metering.netBilling !== undefined || metering.annualMinimum !== undefined;
}

/**
 * The rules that decide what is carried and when it settles: the kind carried (a kWh bank, a net metering
 * or a net billing money balance, nothing), the settlement month and the roll-over of the true-up value.
 * Two tariff documents with the same rules carry across their change; with other rules, what is carried is
 * settled at the change (metering/README.md). Prices, sell rates, expiry and the annual minimum are not part
 * of them: those apply as the document in effect states them.
 */
export function settlementRules(metering: Metering): string {
  const kind = metering.mode === 'net_metering' ? `net_metering/${metering.netMetering!.carryOver}` : metering.netBilling ? 'net_billing/dollars' : 'none';
  if (kind === 'none') return kind;
  return `${kind}/${settlementMonth(metering)}/${metering.netMetering?.trueUpCreditRollover ? 'rollover' : 'paid'}`;
}
