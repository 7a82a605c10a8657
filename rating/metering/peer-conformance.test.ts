/**
 * The peer conformance suite (`../shared/peer-conformance/`, bills asserted by NREL SAM's and REopt.jl's
 * own tests) replayed through the pure core: every run's tariff imported from its URDB body with its
 * `setup` options beside it (importUrdb), its CSV readings rated as a sequence of billing windows with
 * `rateMeteredWindows` under the metering the document states, every check
 * evaluated in exact decimals with the suite's pass rule, and a table of all checks printed.
 *
 * The shared material lives beside the repository (or where SHARED_DIR says); without it the suite is
 * skipped with a printed reason, except in CI (CI=true), where its absence fails.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Decimal from 'decimal.js';
import { describe, expect, it } from 'vitest';
import type { MeterInterval } from '../intervals.js';
import { type DemandHistoryEntry, peakDemandKw } from '../rate.js';
import type { TariffDocument } from '../tariff.schema.js';
import { importUrdb } from '../urdb.js';
import { compileTariff } from '../compiled-tariff.js';
import { rateMeteredWindows, type MeteredCharges } from './billing-windows.js';
import type { StatedMetering } from './options.js';

const D = Decimal.clone({ precision: 50 });
const repositoryRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const suiteDir = resolve(process.env.SHARED_DIR ?? resolve(repositoryRoot, '..', 'shared'), 'peer-conformance');

interface Check {
  id: string;
  kind: 'sum_total' | 'sum_amount_of_type' | 'neg_sum_amount_of_type' | 'line_quantity' | 'neg_sum_amount_of_type_and_period';
  types?: string[];
  period?: string;
  tier?: number;
  window?: number;
  expected: string;
  tolerance: string;
  perLineRounding: boolean;
}
interface Run {
  id: string;
  tariff: string;
  load: string;
  intervalSeconds: number;
  windows: { from: string; to: string }[];
  setup?: { netMetering?: StatedMetering['netMetering']; netBilling?: StatedMetering['netBilling']; billingDemand?: { lookbackHorizonMonths?: number }; tierScope?: 'window' | 'period' };
  checks: Check[];
}
interface Case {
  case: string;
  timezone: string;
  runs: Run[];
}
interface Line {
  type: string;
  period?: string;
  tier?: number;
  quantity?: string;
  amount: string;
}

/**
 * The run's tariff document: the URDB rate imported with the run's `setup` options beside it, as
 * `POST /v1/tariffs/urdb` takes them; the metering comes from the document.
 */
function tariffOf(dir: string, c: Case, run: Run): TariffDocument {
  const body = JSON.parse(readFileSync(join(dir, c.case, run.tariff), 'utf8')) as { id: string; timezone: string; rate: Record<string, unknown> };
  const { netMetering, netBilling, tierScope, billingDemand } = run.setup ?? {};
  return importUrdb(body.rate, {
    timeZone: body.timezone,
    id: body.id,
    effectiveFrom: null,
    ...(tierScope ? { tierScope } : {}),
    ...(billingDemand ? { billingDemand } : {}),
    ...(netMetering ? { netMetering: netMetering as TariffDocument['netMetering'] } : {}),
    ...(netBilling ? { netBilling: netBilling as TariffDocument['netBilling'] } : {}),
  }).tariff;
}

/** CSV rows -> meter intervals (Wh as written, to integer mWh exactly). */
function intervalsOf(csv: string): MeterInterval[] {
  const rows = csv.trim().split('\n');
  const header = rows[0].split(',');
  const col = (name: string) => header.indexOf(name);
  const [s, n, i, e] = [col('intervalStart'), col('intervalSeconds'), col('importWh'), col('exportWh')];
  return rows.slice(1).map((row) => {
    const f = row.split(',');
    return {
      intervalStart: Date.parse(f[s]),
      intervalSeconds: Number(f[n]),
      importMwh: new D(f[i]).mul(1000).toFixed(0),
      exportMwh: new D(f[e]).mul(1000).toFixed(0),
      quality: 'actual' as const,
    };
  });
}

/** Peaks of the 12 local calendar months before the first window (the ratchet's history). */
function demandHistoryOf(tariff: TariffDocument, intervals: MeterInterval[], firstFrom: number, intervalSeconds: number): DemandHistoryEntry[] {
  const clock = compileTariff(tariff).classifier.clock;
  const history: DemandHistoryEntry[] = [];
  let to = firstFrom;
  for (let k = 0; k < 12; k++) {
    const local = clock.localTime(to - 1);
    const from = clock.startOfDay(local.dayNumber - (local.day - 1));
    history.push({ from, to, peakKw: peakDemandKw({ tariff, intervals, span: { from, to }, meterIntervalSeconds: intervalSeconds }) });
    to = from;
  }
  return history;
}

function evaluate(check: Check, windows: { total: string; lines: Line[] }[]): { ours: Decimal; lines: number } {
  const ofTypes = (l: Line) => check.types!.includes(l.type);
  const sumOf = (keep: (l: Line) => boolean) => {
    let total = new D(0);
    let n = 0;
    for (const w of windows)
      for (const l of w.lines.filter(keep)) {
        total = total.plus(l.amount);
        if (!new D(l.amount).isZero()) n++;
      }
    return { total, n };
  };
  switch (check.kind) {
    case 'sum_total':
      return { ours: windows.reduce((t, w) => t.plus(w.total), new D(0)), lines: sumOf(() => true).n };
    case 'sum_amount_of_type': {
      const { total, n } = sumOf(ofTypes);
      return { ours: total, lines: n };
    }
    case 'neg_sum_amount_of_type': {
      const { total, n } = sumOf(ofTypes);
      return { ours: total.neg(), lines: n };
    }
    case 'neg_sum_amount_of_type_and_period': {
      const { total, n } = sumOf((l) => ofTypes(l) && l.period === check.period);
      return { ours: total.neg(), lines: n };
    }
    case 'line_quantity': {
      const line = windows[0].lines.find((l) => l.type === check.types![0] && l.period === check.period && l.tier === check.tier);
      return { ours: new D(line?.quantity ?? 0), lines: 0 };
    }
  }
}

/** Every run rated through the pure core; one row per check. */
export function replaySuite(dir: string): { name: string; ours: string; expected: string; allowed: string; pass: boolean; error?: string }[] {
  const cases = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => JSON.parse(readFileSync(join(dir, e.name, 'expected.json'), 'utf8')) as Case)
    .sort((a, b) => a.case.localeCompare(b.case));
  const rows: ReturnType<typeof replaySuite> = [];
  for (const c of cases)
    for (const run of c.runs) {
      let charges: MeteredCharges[] | null = null;
      let error = '';
      try {
        const tariff = tariffOf(dir, c, run);
        const intervals = intervalsOf(readFileSync(join(dir, c.case, run.load), 'utf8'));
        const windows = run.windows.map((w) => ({ from: Date.parse(w.from), to: Date.parse(w.to) }));
        const history = tariff.billingDemand ? demandHistoryOf(tariff, intervals, windows[0].from, run.intervalSeconds) : undefined;
        charges = rateMeteredWindows({
          tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff }],
          intervals,
          meterIntervalSeconds: run.intervalSeconds,
          windows: windows.map((window) => ({ window, billingCycle: window, ...(history ? { demandHistory: history } : {}) })),
        });
      } catch (err) {
        error = (err as Error).message;
      }
      for (const check of run.checks) {
        const name = `${c.case}/${run.id}/${check.id}`;
        if (!charges) {
          rows.push({ name, ours: '-', expected: check.expected, allowed: check.tolerance, pass: false, error });
          continue;
        }
        const selected = check.window === undefined ? charges : [charges[check.window]];
        const { ours, lines } = evaluate(check, selected as unknown as { total: string; lines: Line[] }[]);
        const allowed = new D(check.tolerance).plus(check.perLineRounding ? new D('0.005').mul(lines) : 0);
        rows.push({ name, ours: ours.toFixed(), expected: check.expected, allowed: allowed.toFixed(), pass: ours.minus(check.expected).abs().lte(allowed) });
      }
    }
  return rows;
}

if (!existsSync(suiteDir)) {
  const reason = `${suiteDir} is absent (set SHARED_DIR to the shared material): the peer suite is not replayed through the pure core`;
  describe('peer conformance through the pure core', () => {
    it(process.env.CI === 'true' ? 'has its shared material in CI' : `is not replayed here: ${reason}`, () => {
      if (process.env.CI === 'true') expect.fail(reason);
      console.warn(reason);
      expect(existsSync(suiteDir)).toBe(false);
    });
  });
} else {
  describe('peer conformance through the pure core', () => {
    const rows = replaySuite(suiteDir);
    const width = Math.max(...rows.map((r) => r.name.length));
    const table = rows.map((r) => `${r.pass ? 'pass' : 'FAIL'}  ${r.name.padEnd(width)}  ours ${r.ours.padStart(10)}  peer ${r.expected.padStart(10)}  allowed ${r.allowed}${r.error ? `  (${r.error.slice(0, 120)})` : ''}`);
    const byCase = new Map<string, { pass: number; all: number }>();
    for (const r of rows) {
      const key = r.name.split('/')[0];
      const entry = byCase.get(key) ?? { pass: 0, all: 0 };
      entry.all++;
      if (r.pass) entry.pass++;
      byCase.set(key, entry);
    }
    console.log(
      [
        `peer conformance through the pure core: ${rows.filter((r) => r.pass).length} of ${rows.length} checks hold`,
        ...table,
        ...[...byCase].map(([k, v]) => `  ${k}: ${v.pass}/${v.all}`),
      ].join('\n'),
    );
    it('holds all 91 checks of the suite', () => {
      expect(rows.length).toBe(91);
    });
    for (const row of rows)
      it(row.name, () => {
        expect(row.error, row.error).toBeUndefined();
        expect(row.pass, `ours ${row.ours} vs the peer's ${row.expected} (allowed ${row.allowed})`).toBe(true);
      });
  });
}
