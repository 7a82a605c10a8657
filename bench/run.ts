/**
 * `npm run bench -- [--quick] [--scenario NAME ...] [--accounts N] [--samples N] [--metering plain|net] [--cpu-prof DIR]`: measures
 * the system against the machine's own limits, writes bench/results/latest.json and prints a table. The only
 * benchmark command (`npm run bench:ingest`, `bench:charges`, `bench:billing` choose scenarios).
 * Scenarios (bench/scenarios/, README.md): ingest, ingestSingle, charges, memory, storage, ingestExternal,
 * freshness and billRun (--accounts: bills closed by billRun; --samples: readings timed by freshness;
 * --metering net: freshness's timed meters net-metered with months of history before the open cycle).
 * Uses DATABASE_URL's server, a fresh database per scenario; when DATABASE_URL is unset, an embedded
 * PostgreSQL started for the run under bench/.data (no TimescaleDB there: readings are a plain table, and
 * the results say so). --quick: small sizes, within about 3 minutes; the full run: within about 20.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres } from '../common/db.js';
import { createLogger } from '../common/logger.js';
import { machine } from './support.js';
import { ingestScenario } from './scenarios/ingest.js';
import { ingestSingleScenario } from './scenarios/ingest-single.js';
import { chargesScenario } from './scenarios/charges.js';
import { memoryScenario } from './scenarios/memory.js';
import { storageScenario } from './scenarios/storage.js';
import { ingestExternalScenario } from './scenarios/ingest-external.js';
import { billRunScenario, freshnessScenario } from './scenarios/billing.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    scenario: { type: 'string', multiple: true },
    'cpu-prof': { type: 'string' },
    accounts: { type: 'string' },
    samples: { type: 'string' },
    metering: { type: 'string', default: 'plain' },
  },
});
if (args.metering !== 'plain' && args.metering !== 'net') throw new Error(`--metering: "plain" or "net", not "${args.metering}"`);
const metering = args.metering;
const quick = args.quick!;
const log = (line: string) => console.error(line);

let embedded: { stop(): Promise<void> } | null = null;
if (!process.env.DATABASE_URL) {
  log('DATABASE_URL is unset: starting an embedded PostgreSQL under bench/.data for this run');
  const db = await startEmbeddedPostgres(new URL('./.data', import.meta.url).pathname, createLogger('warn', 'bench'));
  embedded = db;
  // Scenarios create their own databases on this server and start the gateway with its URL.
  process.env.DATABASE_URL = db.url;
}
/** What the numbers were measured against: server version, TimescaleDB, the settings that matter most. */
async function describeDatabase() {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT current_setting('server_version') AS server, current_setting('shared_buffers') AS "sharedBuffers",
              current_setting('max_wal_size') AS "maxWalSize", current_setting('synchronous_commit') AS "synchronousCommit",
              (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS timescaledb`,
    );
    return { embedded: embedded !== null, ...rows[0] };
  } finally {
    await client.end();
  }
}

type Scenario = () => Promise<Record<string, unknown>>;
const scenarios: Record<string, Scenario> = {
  ingest: () => ingestScenario({ readings: quick ? 200_000 : 1_000_000, connections: 8, batch: 100, inflight: 16, meters: quick ? 2_000 : 10_000, cpuProfileDir: args['cpu-prof'] }),
  ingestSingle: () => ingestSingleScenario({ meters: quick ? 200 : 1_000, messagesPerMeter: quick ? 50 : 100, inflight: 4 }),
  charges: () => chargesScenario({ meters: quick ? 1_000 : 10_000, requests: quick ? 100 : 300, log }),
  memory: () => memoryScenario({ connections: quick ? 1_000 : 10_000 }),
  storage: () => storageScenario({ meters: 1_000, days: quick ? 7 : 28 }),
  ingestExternal: () => ingestExternalScenario({ messages: quick ? 20_000 : 100_000, readingsPerMessage: 1, publishers: 4, subscriberConnections: 4 }),
  freshness: () => freshnessScenario({ quick, log, samples: args.samples ? Number(args.samples) : undefined, metering }),
  billRun: () => billRunScenario({ quick, log, accounts: args.accounts ? Number(args.accounts) : undefined }),
};
const chosen = args.scenario?.length ? args.scenario : Object.keys(scenarios);
for (const name of chosen) if (!scenarios[name]) throw new Error(`unknown scenario "${name}"; known: ${Object.keys(scenarios).join(', ')}`);

const resultsPath = new URL('./results/latest.json', import.meta.url);
let previous: Record<string, unknown> = {};
try {
  previous = JSON.parse(readFileSync(resultsPath, 'utf8'));
} catch {
  previous = {};
}
const results: Record<string, unknown> = { ...previous, machine: { ...machine(), database: await describeDatabase() }, mode: quick ? 'quick' : 'full', startedAt: new Date().toISOString() };
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
await embedded?.stop();
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(resultsPath, JSON.stringify(results, null, 2) + '\n');

const fmt = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en') : String(n ?? '-'));
const r = results as Record<string, Record<string, any>>;
const rows: [string, string, string][] = [
  ['ingest readings/s (100/msg, QoS 1)', fmt(r.ingest?.readingsPerSec), `COPY ${fmt(r.ingest?.rawInsertPerSec)}/s, ratio ${fmt(r.ingest?.ratioToRawInsert)}`],
  ['ingest PUBACK latency p50 / p99 ms', `${fmt(r.ingest?.ackLatencyMs?.p50)} / ${fmt(r.ingest?.ackLatencyMs?.p99)}`, ''],
  ['ingestSingle msgs/s (1/msg, 1 conn/meter)', fmt(r.ingestSingle?.msgsPerSec), `broker only ${fmt(r.ingestSingle?.brokerOnlyMsgsPerSec)}/s, ratio ${fmt(r.ingestSingle?.ratioToBrokerOnly)}`],
  ['charges p50 / p95 ms (1 meter-month)', `${fmt(r.charges?.p50Ms)} / ${fmt(r.charges?.p95Ms)}`, `${fmt(r.charges?.meters)} meters' data`],
  ['freshness PUBACK->visible p50 / p99 ms', `${fmt(r.freshness?.p50Ms)} / ${fmt(r.freshness?.p99Ms)}`, `${r.freshness?.metering ?? 'plain'} tariff${r.freshness?.history ? `, ${fmt(r.freshness.history.intervalsPerMeter)} intervals per meter before the open cycle; a late reading before it carried in: p50 / p99 ${fmt(r.freshness.lateHistory?.p50Ms)} / ${fmt(r.freshness.lateHistory?.p99Ms)} ms` : ''}`],
  ['bill run bills/s', fmt(r.billRun?.billsPerSec), `${fmt(r.billRun?.bills)} bills`],
  ['external mode msgs/s (1/msg via Mosquitto, 4 subscriber conns)', fmt(r.ingestExternal?.messagesPerSec), `Mosquitto to a subscriber storing nothing ${fmt(r.ingestExternal?.brokerOnly?.messagesPerSec)}/s, ratio ${fmt(r.ingestExternal?.ratioToBrokerOnly)}`],
  ['gateway RSS MB', fmt(r.memory?.rssMb), `${fmt(r.memory?.connections)} connections`],
  ['database MB per meter-year (15-min)', fmt(r.storage?.mbPerMeterYear), `${fmt(r.storage?.bytesPerReading)} bytes/reading (heap ${fmt(r.storage?.meterReadings?.heap)}, key ${fmt(r.storage?.meterReadings?.indexes?.meter_readings_pkey)}, late ${fmt(r.storage?.meterReadings?.indexes?.meter_readings_late_idx)}; closed chunks in meter order ${fmt(r.storage?.meterReadingsReordered?.bytesPerReading)}); 001 layout ${fmt(r.storage?.layout001?.mbPerMeterYear)} MB, ${fmt(r.storage?.layout001?.bytesPerReading)} bytes/reading; compressed: ${r.storage?.compressedBytesPerMeterYear ? fmt(Math.round((r.storage.compressedBytesPerMeterYear / 2 ** 20) * 100) / 100) + ' MB' : r.storage?.compression ?? '-'}`],
];
const d = r.machine.database;
console.log(`\nmachine: ${r.machine.cpus} cores ${r.machine.cpuModel}, ${r.machine.memoryGb} GiB, Node ${r.machine.node}; load ${r.machine.loadAverageAtStart} at start; ${quick ? 'quick' : 'full'} run, ${results.totalSeconds} s`);
console.log(`database: ${d.embedded ? 'embedded ' : ''}PostgreSQL ${d.server}, TimescaleDB ${d.timescaledb ?? 'absent'}, shared_buffers ${d.sharedBuffers}, max_wal_size ${d.maxWalSize}, synchronous_commit ${d.synchronousCommit}\n`);
console.log('| measure | result | alongside |\n|---|---|---|');
for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
