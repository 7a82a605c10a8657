/**
 * Real URDB rates (`../shared/urdb-corpus/`): the whole population (2,934 rates of 1,186 utilities)
 * through the importer, and a month of 15-minute readings rated on each of the 200 curated rates that
 * import. The importer is the pure one (the API maps its issues to the 400's details one to one and adds
 * nothing else to an import); the rating is the pure core's.
 *
 * What must hold: every rate imports or is refused with issues that each name a field of the rate; the
 * share that imports does not fall (the counts are printed); a rate that imports also rates.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importUrdb, rateWindow, UrdbImportError, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { sharedFolder } from '../support/shared-material.js';

const { dir, reason } = sharedFolder('urdb-corpus');
/** The import must handle at least these shares (see the printed counts and rating/README.md). */
const MIN_IMPORTED = 0.99;
/**
 * Of the rates that carry a reactive power charge ($/kVAR, rated from reactive energy readings): the field
 * itself is never refused; 5 of the 120 are refused for other fields (schedules naming missing periods,
 * tiers without a price).
 */
const MIN_IMPORTED_REACTIVE = 0.958;

interface PopulationRate {
  id: string;
  timezone: string;
  rate: Record<string, unknown>;
}

const reactive = (rate: Record<string, unknown>) =>
  [rate.demandreactivepowercharge, rate.demandReactPwrCharge].some((v) => v !== undefined && v !== null && v !== '' && Number(v) !== 0);

if (!dir) {
  describe('URDB corpus', () => {
    it(process.env.CI === 'true' ? 'has its shared material in CI' : `is not imported here: ${reason}`, () => {
      if (process.env.CI === 'true') expect.fail(reason);
      expect(dir).toBeNull();
    });
  });
} else {
  describe('URDB corpus: the population', () => {
    it('imports every rate it can rate and refuses the others naming each field, with counts printed', () => {
      const rates: PopulationRate[] = readFileSync(join(dir, 'population.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      let imported = 0;
      let withWarnings = 0;
      let reactiveRates = 0;
      let importedReactive = 0;
      const refusedFields = new Map<string, number>();
      for (const { id, timezone, rate } of rates) {
        if (reactive(rate)) reactiveRates++;
        try {
          const { tariff, warnings } = importUrdb(rate, { timeZone: timezone, id, asOf: Date.parse('2026-11-30T00:00:00Z') });
          expect(tariff.id).toBe(id);
          imported++;
          if (reactive(rate)) {
            importedReactive++;
            expect(tariff.demand?.reactive, id).toBeDefined();
          }
          if (warnings.length) withWarnings++;
          for (const w of warnings) expect(w.path).toMatch(/^rate\./);
        } catch (err) {
          expect(err, `${id}: ${String(err)}`).toBeInstanceOf(UrdbImportError);
          const issues = (err as UrdbImportError).issues;
          expect(issues.length).toBeGreaterThan(0);
          for (const issue of issues) {
            // Each issue names a field of the rate itself (or a tier or cell inside it), with a reason.
            const field = /^rate\.([A-Za-z_]+)/.exec(issue.path)?.[1];
            expect(field, `${id}: ${issue.path}`).toBeDefined();
            expect(Object.keys(rate).concat(['demandreactivepowercharge', 'demandrateunit', 'flatdemandunit'])).toContain(field);
            expect(issue.message.length).toBeGreaterThan(10);
          }
          for (const f of new Set(issues.map((i) => i.path.replace(/\[\d+\]/g, '[]')))) refusedFields.set(f, (refusedFields.get(f) ?? 0) + 1);
        }
      }
      console.log(
        `URDB population: ${imported} of ${rates.length} rates import (${((100 * imported) / rates.length).toFixed(1)} %), ` +
          `${withWarnings} of them with warnings; of the ${reactiveRates} rates with a reactive power charge ` +
          `${importedReactive} import (${((100 * importedReactive) / reactiveRates).toFixed(1)} %). Refusals by field: ` +
          [...refusedFields].sort((a, b) => b[1] - a[1]).map(([f, n]) => `${f} ${n}`).join(', '),
      );
      expect(imported / rates.length).toBeGreaterThanOrEqual(MIN_IMPORTED);
      expect(importedReactive / reactiveRates).toBeGreaterThanOrEqual(MIN_IMPORTED_REACTIVE);
      expect([...refusedFields.keys()].filter((f) => f.startsWith('rate.demandreactivepowercharge'))).toEqual([]);
    });
  });

  describe('URDB corpus: the curated rates rate a month of 15-minute readings', () => {
    const zones = new Map(
      readFileSync(join(dir, 'curated', 'results.csv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((row) => row.split(','))
        .map((f) => [f[0], f[3]] as const),
    );
    const files = readdirSync(join(dir, 'curated')).filter((f) => f.endsWith('.json')).sort();

    it('has its 200 rates, each with a zone', () => {
      expect(files).toHaveLength(200);
      for (const f of files) expect(zones.get(f), f).toMatch(/^[A-Za-z_]+\//);
    });

    it('gives charges with no error for every curated rate that imports', () => {
      let rated = 0;
      let refused = 0;
      let reactiveRated = 0;
      for (const file of files) {
        const rate = JSON.parse(readFileSync(join(dir, 'curated', file), 'utf8'));
        let tariff: TariffDocument;
        try {
          tariff = importUrdb(rate, { timeZone: zones.get(file)!, id: file.slice(-29, -5) }).tariff;
        } catch (err) {
          expect(err).toBeInstanceOf(UrdbImportError);
          refused++;
          continue;
        }
        const { from, to } = ratedMonth(tariff);
        // A household or small business: 0.1-2.6 kWh a quarter hour, more in the evening; export around noon
        // except under net metering (not rated yet with export); reactive import 30 % of import (power factor
        // about 0.96) on the rates that charge for it.
        const intervals: MeterInterval[] = [];
        for (let start = from, i = 0; start < to; start += 900_000, i++) {
          const hour = Math.floor((i % 96) / 4);
          const importMwh = 100_000 + ((i * 7919) % 2_000_000) + (hour >= 17 && hour < 21 ? 500_000 : 0);
          const exportMwh = tariff.netMetering || hour < 11 || hour > 13 ? 0 : (i * 104729) % 300_000;
          const reactiveImportMvarh = tariff.demand?.reactive ? Math.floor((importMwh * 3) / 10) : undefined;
          intervals.push({ intervalStart: start, intervalSeconds: 900, importMwh, exportMwh, reactiveImportMvarh, quality: 'actual' });
        }
        const charges = rateWindow({
          tariffTimeline: [{ from: Number.NEGATIVE_INFINITY, tariff }],
          intervals,
          billingWindow: { from, to },
          meterIntervalSeconds: 900,
          ...(tariff.billingDemand ? { demandHistory: [] } : {}),
        });
        expect(charges.coverage.actualIntervals, file).toBe(intervals.length);
        expect(charges.total, file).toMatch(/^-?\d+\.\d{2}$/);
        if (tariff.demand?.reactive) {
          expect(charges.lines.filter((l) => l.type === 'demand' && l.period === 'reactive'), file).toHaveLength(1);
          reactiveRated++;
        }
        rated++;
      }
      console.log(`URDB curated: ${rated} rates rated a month of 15-minute readings (${reactiveRated} with a reactive power charge); ${refused} refused at import`);
      expect(rated + refused).toBe(files.length);
      expect(rated / files.length).toBeGreaterThanOrEqual(0.8);
    });
  });
}

/** July 2026 in the tariff's zone, or the first whole month after its effectiveFrom when that is later. */
function ratedMonth(tariff: TariffDocument): { from: number; to: number } {
  const effective = tariff.effectiveFrom ? Date.parse(tariff.effectiveFrom) : Number.NEGATIVE_INFINITY;
  let year = 2026;
  let month = 7;
  const start = (y: number, m: number) => localMidnight(tariff.timeZone, y, m);
  while (start(year, month) < effective) [year, month] = month === 12 ? [year + 1, 1] : [year, month + 1];
  const [nextYear, nextMonth] = month === 12 ? [year + 1, 1] : [year, month + 1];
  return { from: start(year, month), to: start(nextYear, nextMonth) };
}

function localMidnight(zone: string, year: number, month: number): number {
  const utc = Date.UTC(year, month - 1, 1);
  const offset = (instant: number) => {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' }).formatToParts(instant);
    const get = (t: string) => Number(parts.find((p) => p.type === t)!.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute')) - instant;
  };
  return utc - offset(utc - offset(utc));
}
