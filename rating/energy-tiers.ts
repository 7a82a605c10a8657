/**
 * Energy tiers of a piece: which tier each kWh falls in.
 *
 * 1. Limits (`resolveTiers`): each tier `max` becomes an upper limit in cumulative mWh of the window, by
 *    its unit: `kWh` x the document's share of the cycle; `kWh daily` x the local days of the piece;
 *    `kWh/kW` x the window's billing demand x share; `kWh/kW daily` x days x billing demand. A limit of
 *    1e37 or more (SAM's and URDB's "no limit") is open-ended. Rounded half-up to the mWh.
 * 2. Blocks (SAM's conversion, `rate_data::init_energy_rates` of NREL ssc): in a period with a `kWh/kW`
 *    tier, each kWh/kW tier ends a block. A kWh/kW tier followed by kWh tiers is a block header and is never
 *    charged itself: the kWh tiers after it subdivide its block, their limits cut at the block's end, and a
 *    kWh tier that starts at or beyond the block's end gets nothing. A kWh/kW tier followed by another
 *    kWh/kW tier (or last) is charged between the previous block's end and its own.
 * 3. Filling (`fillTiers`): the intervals in time order; the cumulative import of the whole window (scope
 *    "window") or of the interval's own period (scope "period") says which tier of the interval's period
 *    applies: the first whose limit lies above it. An interval crossing a limit is split. The last tier of a
 *    period is open-ended: beyond a period's last limit its last tier applies.
 *
 * The fill runs on numbers while provably exact and on bigints otherwise (see mwh.ts); both give the same
 * integers.
 */
import type { InstantClass } from './classify.js';
import type { CompiledEnergyPeriod } from './compiled-tariff.js';
import type { WindowInterval } from './intervals.js';
import { Dec, toMilli } from './money.js';
import { allExact } from './mwh.js';

/** A tier of a period as it applies in one piece. */
export interface ResolvedTier {
  /** index of the tier in the period's `tiers` (line tier = index + 1) */
  index: number;
  /** cumulative mWh of the scope at which the tier ends; null: open-ended */
  upper: bigint | null;
}

export interface TierContext {
  /** the document's share of the billing cycle (prorates kWh limits) */
  share: Dec;
  /** local days of the piece (daily limits) */
  days: number;
  /** the window's billing demand in kW (kWh/kW limits); 0 without demand */
  billingDemandKw: Dec;
}

const NO_LIMIT = new Dec('1e37');

/** The tiers of a period in a piece, after unit resolution and SAM's block conversion. */
export function resolveTiers(period: CompiledEnergyPeriod, context: TierContext): ResolvedTier[] {
  const limits = period.tiers.map((tier) => {
    if (tier.max === null || tier.max.gte(NO_LIMIT)) return null;
    switch (tier.unit) {
      case 'kWh':
        return context.share.eq(1) ? tier.limit : toMilli(tier.max.mul(context.share));
      case 'kWh daily':
        return toMilli(tier.max.mul(context.days));
      case 'kWh/kW':
        return toMilli(tier.max.mul(context.billingDemandKw).mul(context.share));
      case 'kWh/kW daily':
        return toMilli(tier.max.mul(context.days).mul(context.billingDemandKw));
    }
  });
  const perKw = period.tiers.map((tier) => tier.unit === 'kWh/kW' || tier.unit === 'kWh/kW daily');
  let resolved: ResolvedTier[];
  if (!perKw.includes(true)) {
    resolved = limits.map((upper, index) => ({ index, upper }));
  } else {
    const blockEnds = limits.filter((_, i) => perKw[i]);
    resolved = [];
    let block = -1;
    const below = (a: bigint | null, b: bigint | null) => a !== null && (b === null || a < b);
    for (let i = 0; i < limits.length; i++) {
      if (perKw[i]) {
        block++;
        const header = i + 1 < limits.length && !perKw[i + 1];
        if (!header) resolved.push({ index: i, upper: blockEnds[block] });
        continue;
      }
      const blockEnd = blockEnds[Math.max(block, 0)];
      if (below(limits[i], blockEnd)) resolved.push({ index: i, upper: limits[i] });
      else if (resolved.length === 0 || below(resolved[resolved.length - 1].upper, blockEnd))
        resolved.push({ index: i, upper: blockEnd });
    }
  }
  resolved[resolved.length - 1] = { ...resolved[resolved.length - 1], upper: null };
  return resolved;
}

/**
 * mWh per (period, resolved tier) of `field`, filled in time order. `tiers[p]` are the resolved tiers of
 * period p; the result has the same shape.
 */
export function fillTiers(
  intervals: WindowInterval[],
  classes: InstantClass[],
  tiers: ResolvedTier[][],
  scope: 'window' | 'period',
  field: 'importMwh' | 'exportMwh',
  numeric: boolean,
): bigint[][] {
  if (numeric) {
    const result = fillNumbers(intervals, classes, tiers, scope, field);
    if (result) return result;
  }
  return fillBigints(intervals, classes, tiers, scope, field);
}

function fillNumbers(
  intervals: WindowInterval[],
  classes: InstantClass[],
  tiers: ResolvedTier[][],
  scope: 'window' | 'period',
  field: 'importMwh' | 'exportMwh',
): bigint[][] | null {
  const periods = tiers.length;
  // Limits above 2^53 - 1 can never be reached while every position stays exact (checked at the end).
  const uppers = tiers.map((ts) => Float64Array.from(ts, (t) => (t.upper === null || t.upper > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(t.upper))));
  const sums = tiers.map((ts) => new Float64Array(ts.length));
  const positions = new Float64Array(scope === 'window' ? 1 : periods);
  const current = new Int32Array(periods);
  for (let i = 0; i < intervals.length; i++) {
    let energy = intervals[i][field] as number;
    if (energy === 0) continue;
    const p = classes[i].energyPeriod;
    if (!(p >= 0 && p < periods)) return null;
    const at = scope === 'window' ? 0 : p;
    const upper = uppers[p];
    let t = current[p];
    while (energy > 0) {
      while (upper[t] <= positions[at]) t++;
      const take = Math.min(energy, upper[t] - positions[at]);
      sums[p][t] += take;
      positions[at] += take;
      energy -= take;
    }
    current[p] = t;
  }
  if (!allExact(positions)) return null;
  return sums.map((s) => Array.from(s, (mwh) => BigInt(mwh)));
}

function fillBigints(
  intervals: WindowInterval[],
  classes: InstantClass[],
  tiers: ResolvedTier[][],
  scope: 'window' | 'period',
  field: 'importMwh' | 'exportMwh',
): bigint[][] {
  const sums = tiers.map((ts) => ts.map(() => 0n));
  const positions = (scope === 'window' ? [0] : tiers).map(() => 0n);
  const current = tiers.map(() => 0);
  for (let i = 0; i < intervals.length; i++) {
    let energy = BigInt(intervals[i][field]);
    if (energy === 0n) continue;
    const p = classes[i].energyPeriod;
    const at = scope === 'window' ? 0 : p;
    const period = tiers[p];
    let t = current[p];
    while (energy > 0n) {
      while (period[t].upper !== null && period[t].upper! <= positions[at]) t++;
      const room = period[t].upper === null ? energy : period[t].upper! - positions[at];
      const take = energy < room ? energy : room;
      sums[p][t] += take;
      positions[at] += take;
      energy -= take;
    }
    current[p] = t;
  }
  return sums;
}
