/**
 * The peer conformance suite (`../shared/peer-conformance/`, bills asserted by NREL SAM's and REopt.jl's
 * own tests) replayed through the pure core: every run's tariff imported from its URDB body with its
 * `setup` options beside it (importUrdb), its CSV readings rated as a sequence of billing windows with
 * `rateMeteredWindows` under the metering the document states, every check
 * evaluated in exact decimals with the suite's pass rule, and a table of all checks printed.
 *
 * The suite is read and checked against its format by `test/support/peer-suite.ts`, as the replay
 * through the public API reads it. The shared material lives beside the repository (or where SHARED_DIR
 * says); without it the suite is skipped with a printed reason, except in CI (CI=true), where its
 * absence fails.
 */
import Decimal from 'decimal.js';
import { describe, expect, it } from 'vitest';
import * as peer from '../../test/support/peer-suite.js';
import type { MeterInterval } from '../intervals.js';
import { type DemandHistoryEntry, peakDemandKw } from '../rate.js';
import type { TariffDocument } from '../tariff.schema.js';
import { importUrdb } from '../urdb.js';
import { compileTariff } from '../compiled-tariff.js';
import { rateMeteredWindows, type MeteredCharges } from './billing-windows.js';

const D = Decimal.clone({ precision: 50 });

/**
 * The run's tariff document: the URDB rate imported with the run's `setup` options beside it, as
 * `POST /v1/tariffs/urdb` takes them; the metering comes from the document.
 */
function tariffOf(suite: peer.PeerSuite, c: peer.PeerCase, run: peer.PeerRun): TariffDocument {
  const body = peer.peerTariffBody(suite, c, run);
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

/** The run's readings as meter intervals (Wh as written, to integer mWh exactly). */
function intervalsOf(suite: peer.PeerSuite, c: peer.PeerCase, run: peer.PeerRun): MeterInterval[] {
  return peer.peerReadings(suite, c, run).map((r) => ({
    intervalStart: Date.parse(r.intervalStart),
    intervalSeconds: Number(r.intervalSeconds),
    importMwh: new D(r.importWh).mul(1000).toFixed(0),
    exportMwh: new D(r.exportWh).mul(1000).toFixed(0),
    quality: 'actual' as const,
  }));
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

/** Every run rated through the pure core; one row per check. */
function replaySuite(suite: peer.PeerSuite): { name: string; ours: string; expected: string; allowed: string; pass: boolean; error?: string }[] {
  const rows: ReturnType<typeof replaySuite> = [];
  for (const { c, run } of suite.runs) {
    let charges: MeteredCharges[] | null = null;
    let error = '';
    try {
      const tariff = tariffOf(suite, c, run);
      const intervals = intervalsOf(suite, c, run);
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
      const { ours, expected, allowed, pass } = peer.peerOutcome(check, charges);
      rows.push({ name, ours, expected, allowed, pass });
    }
  }
  return rows;
}

const { suite, reason } = peer.loadPeerSuite();

if (!suite) {
  peer.describeAbsentPeerSuite('peer conformance through the pure core', reason);
} else {
  describe('peer conformance through the pure core', () => {
    const rows = replaySuite(suite);
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
