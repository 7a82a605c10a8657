import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { exampleDynamicTariff, exampleTariff, tariffSchema, type TariffDocument } from './index.js';

function problems(document: unknown): string[] {
  const parsed = tariffSchema.safeParse(document);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('tariffSchema', () => {
  it('accepts the complete examples', () => {
    expect(problems(exampleTariff)).toEqual([]);
    expect(problems(exampleDynamicTariff)).toEqual([]);
  });

  it('converts to JSON Schema for OpenAPI, with descriptions, closed objects and the examples', () => {
    const schema = z.toJSONSchema(tariffSchema) as {
      description: string;
      examples: unknown[];
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { description?: string }>;
    };
    expect(schema.description).toBe('Native tariff document');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['id', 'name', 'currency', 'timeZone', 'seasons']);
    expect(schema.examples).toEqual([exampleTariff, exampleDynamicTariff]);
    expect(schema.properties.timeZone.description).toMatch(/IANA/);
    expect(JSON.stringify(schema)).toContain('cumulative import kWh within the billing window, of all periods together');
  });

  it('lists every problem of a broken document with its path', () => {
    const broken = structuredClone(exampleTariff) as TariffDocument & Record<string, unknown>;
    broken.currency = { code: 'USD', minorUnit: 3 };
    broken.timeZone = 'US/Pacific Standard';
    broken.seasons = [
      { id: 'summer', fromMonth: 6, toMonth: 9 },
      { id: 'winter', fromMonth: 10, toMonth: 4 },
    ];
    broken.energy!.periods[0].tiers = [{ rate: '0.1' }, { max: '100', rate: '0.2' }];
    broken.energy!.schedule[0].periods[1].period = 'super_peak';
    broken.energy!.schedule[2].periods[0].from = '00:30';
    broken.holidays!.rules.push({ type: 'fixed', name: 'No such day', month: 2, day: 30 });
    broken.demand!.flat!.push({ id: 'again', seasons: ['summer'], tiers: [{ rate: '1' }] });
    broken.taxs = [];
    expect(problems(broken)).toEqual([
      'currency.minorUnit: ISO 4217 minor unit of USD is 2',
      'timeZone: must be an IANA time zone such as "America/Los_Angeles"',
      ': Unrecognized key: "taxs"',
      'seasons: month 5 is in no season',
      'holidays.rules.8.day: month 2 has no day 30',
      'energy.periods.0.tiers.0.max: every tier but the last needs max',
      'energy.periods.0.tiers.1.max: the last tier is open-ended and has no max',
      'energy.schedule.0.periods.1.period: unknown period super_peak',
      'energy.schedule.2.periods.0.from: the first period starts at 00:00',
      'demand.flat.1.seasons.0: season summer already has flat demand charge flat',
    ]);
  });

  it('requires every season to have a weekday and a weekend schedule, and refuses two rules for one day type', () => {
    const uncovered = structuredClone(exampleTariff);
    uncovered.energy!.schedule[1].dayTypes = ['holiday'];
    expect(problems(uncovered)).toEqual(['energy.schedule: no rule covers weekend of season summer']);
    const twice = structuredClone(exampleTariff);
    twice.energy!.schedule[2].seasons = ['winter', 'summer'];
    expect(problems(twice)).toEqual([
      'energy.schedule.2: weekday of season summer is already covered by rule 0',
      'energy.schedule.2: weekend of season summer is already covered by rule 1',
    ]);
  });

  it('checks currencies against ISO 4217, demand periods against their schedule, and dynamic price slots', () => {
    expect(problems({ ...exampleTariff, currency: { code: 'XAU', minorUnit: 2 } })).toEqual(['currency.code: not an ISO 4217 currency with a minor unit']);
    expect(problems({ ...exampleTariff, currency: { code: 'JPY', minorUnit: 0 } })).toEqual([]);
    expect(problems({ ...exampleTariff, demand: { periods: exampleTariff.demand!.periods } })).toEqual(['demand: periods and schedule go together']);
    const overlapping = structuredClone(exampleDynamicTariff);
    overlapping.dynamicPrices![1].start = '2026-01-15T00:15:00Z';
    overlapping.dynamicPrices![2].end = '2026-01-15T01:00:00Z';
    expect(problems(overlapping)).toEqual(['dynamicPrices.2.end: end must be after start', 'dynamicPrices.1: overlaps dynamicPrices[0]']);
  });

  it('refuses two taxes with one name, so each tax line is unambiguous', () => {
    expect(problems({ ...exampleTariff, taxes: [{ name: 'VAT', rate: '0.05' }, { name: 'VAT', rate: '0.2' }] })).toEqual([
      'taxes: duplicate VAT',
    ]);
  });

  it('keeps money exact: prices are decimal strings, never numbers', () => {
    const withNumber = structuredClone(exampleTariff) as unknown as { energy: { periods: { tiers: { rate: unknown }[] }[] } };
    withNumber.energy.periods[1].tiers[0].rate = 0.38;
    expect(problems(withNumber)).toEqual(['energy.periods.1.tiers.0.rate: Invalid input: expected string, received number']);
  });
});

describe('README', () => {
  it('shows the complete examples exactly as exported', () => {
    const readme = readFileSync(new URL('./README.md', import.meta.url), 'utf8');
    const example = (name: string) => {
      const block = new RegExp(`<!-- ${name} -->\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``).exec(readme);
      expect(block, `README block <!-- ${name} -->`).not.toBeNull();
      return JSON.parse(block![1]);
    };
    expect(example('exampleTariff')).toEqual(exampleTariff);
    expect(example('exampleDynamicTariff')).toEqual(exampleDynamicTariff);
  });
});
