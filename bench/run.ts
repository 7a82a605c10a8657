/**
 * `npm run bench -- [--quick] [--scenario NAME ...]`: measures the system against the machine's own limits
 * and writes bench/results/latest.json (and prints a table). Scenarios: ingest, ingestSingle, charges,
 * freshness, billRun, memory. Uses DATABASE_URL's server (default PostgreSQL on 127.0.0.1:5432), a fresh
 * database per scenario. --quick: small sizes, within about 3 minutes; the full run: within about 20.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { machine } from './support.js';
import { ingestScenario } from './scenarios/ingest.js';
import { ingestSingleScenario } from './scenarios/ingest-single.js';
import { chargesScenario } from './scenarios/charges.js';
import { memoryScenario } from './scenarios/memory.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    'cpu-prof': { type: 'string' },
  },
});
const quick = args.quick!;
const log = (line: string) => console.error(line);

type Scenario = () => Promise<Record<string, unknown>>;
const scenarios: Record<string, Scenario> = {
  ingest: () => ingestScenario({ readings: quick ? 200_000 : 1_000_000, connections: 8, batch: 100, inflight: 16, meters: quick ? 2_000 : 10_000, cpuProfileDir: args['cpu-prof'] }),
  ingestSingle: () => ingestSingleScenario({ meters: quick ? 200 : 1_000, messagesPerMeter: quick ? 50 : 100, inflight: 4 }),
  charges: () => chargesScenario({ meters: quick ? 1_000 : 10_000, requests: quick ? 100 : 300, log }),
  memory: () => memoryScenario({ connections: quick ? 1_000 : 10_000 }),
};
const billingScenarios = './scenarios/billing.js';
const extra = await import(billingScenarios).catch(() => null);
if (extra) {
  scenarios.freshness = () => extra.freshnessScenario({ quick, log });
  scenarios.billRun = () => extra.billRunScenario({ quick, log });
}

const chosen = args.scenario?.length ? args.scenario : Object.keys(scenarios);
for (const name of chosen) if (!scenarios[name]) throw new Error(`unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}`);

const resultsPath = new URL('./results/latest.json', import.meta.url);
let previous: Record<string, unknown> = {};
try {
  previous = JSON.parse(readFileSync(resultsPath, 'utf8'));
} catch {
  previous = {};
}
const results: Record<string, unknown> = { ...previous, machine: machine(), mode: quick ? 'quick' : 'full', startedAt: new Date().toISOString() };
const started = performance.now();
for (const name of chosen) {
  log(`== ${name}`);
  const t0 = performance.now();
  try {
    results[name] = { ...(await scenarios[name]()), seconds: Math.round((performance.now() - t0) / 1000) };
  } catch (err) {
    results[name] = { error: (err as Error).message };
  }
  log(`   ${JSON.stringify(results[name])}`);
}
results.totalSeconds = Math.round((performance.now() - started) / 1000);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(resultsPath, JSON.stringify(results, null, 2) + '\n');

const fmt = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en') : String(n ?? '-'));
const r = results as Record<string, Record<string, any>>;
const rows: [string, string, string][] = [
  ['ingest readings/s (100/msg, QoS 1)', fmt(r.ingest?.readingsPerSec), `COPY ${fmt(r.ingest?.rawInsertPerSec)}/s, ratio ${fmt(r.ingest?.ratioToRawInsert)}`],
  ['ingest PUBACK latency p50 / p99 ms', `${fmt(r.ingest?.ackLatencyMs?.p50)} / ${fmt(r.ingest?.ackLatencyMs?.p99)}`, ''],
  ['ingestSingle msgs/s (1/msg, 1 conn/meter)', fmt(r.ingestSingle?.msgsPerSec), `broker only ${fmt(r.ingestSingle?.brokerOnlyMsgsPerSec)}/s, ratio ${fmt(r.ingestSingle?.ratioToBrokerOnly)}`],
  ['charges p50 / p95 ms (1 meter-month)', `${fmt(r.charges?.p50Ms)} / ${fmt(r.charges?.p95Ms)}`, `${fmt(r.charges?.meters)} meters' data`],
  ['freshness PUBACK->visible p50 / p99 ms', `${fmt(r.freshness?.p50Ms)} / ${fmt(r.freshness?.p99Ms)}`, ''],
  ['bill run bills/s', fmt(r.billRun?.billsPerSec), `${fmt(r.billRun?.bills)} bills`],
  ['gateway RSS MB', fmt(r.memory?.rssMb), `${fmt(r.memory?.connections)} connections`],
];
console.log(`\nmachine: ${r.machine.cpus} cores ${r.machine.cpuModel}, ${r.machine.memoryGb} GiB, Node ${r.machine.node}; ${quick ? 'quick' : 'full'} run, ${results.totalSeconds} s\n`);
console.log('| measure | result | alongside |\n|---|---|---|');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
