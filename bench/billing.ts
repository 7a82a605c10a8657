/**
 * `npm run bench:billing -- [--accounts 10000] [--samples 500] [--quick]`: closing a month of bills
 * (bills/s) and running-charges freshness (PUBACK to visible, p50/p99). The same scenarios run in
 * `npm run bench` (billRun, freshness); see bench/scenarios/billing.ts for what each measures.
 */
import { parseArgs } from 'node:util';
import { machine } from './support.js';
import { billRunScenario, freshnessScenario } from './scenarios/billing.js';

const { values: args } = parseArgs({
  options: {
    accounts: { type: 'string' },
    samples: { type: 'string' },
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
  },
});
const log = (line: string) => console.error(line);
const quick = args.quick!;
const chosen = args.scenario?.length ? args.scenario : ['billRun', 'freshness'];
const results: Record<string, unknown> = { machine: machine() };
if (chosen.includes('billRun')) {
  const r = await billRunScenario({ quick, log, accounts: args.accounts ? Number(args.accounts) : undefined });
  results.billRun = r;
  console.log(`bill run: ${r.bills} bills in ${r.runSeconds} s = ${r.billsPerSec} bills/s (${r.readings.toLocaleString('en')} readings, ${r.storage})`);
}
if (chosen.includes('freshness')) {
  const r = await freshnessScenario({ quick, log, samples: args.samples ? Number(args.samples) : undefined });
  results.freshness = r;
  console.log(`freshness PUBACK -> visible in running charges: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms (${r.samples} samples, ${r.visibleToFirstGet} visible to the first GET, ${r.backgroundReadings} background readings)`);
  const a = r.accountCharges;
  console.log(`running charges of ${a.meters} meters x ${a.intervalsPerMeter} intervals: from memory p50 ${a.fromMemory.p50Ms} / p99 ${a.fromMemory.p99Ms} ms; re-reading the database p50 ${a.rereadingDatabase.p50Ms} / p99 ${a.rereadingDatabase.p99Ms} ms`);
}
console.log(JSON.stringify(results));
