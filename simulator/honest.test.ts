/**
 * The simulator reports success only for what the API's gateway stored: it learns the broker from the API
 * (GET /v1), refuses with one line (exit 3) a broker that is not the API's (a private Mosquitto here, as
 * the one that holds port 1883 on developers' machines), reconciles its ledger with the API (--reconcile,
 * exit 4 on a difference), and in live mode says when the next interval completes and what QoS 1 costs.
 */
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../common/db.js';
import { MOSQUITTO_BIN, mosquittoInstalled, startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../test/support/stack.js';
import type { RunSummary } from './run/run-stats.js';
import { runCli, type CliRun } from './test-support/run-cli.js';

const MOSQUITTO = MOSQUITTO_BIN;
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const haveMosquitto = mosquittoInstalled();
// Locally a missing Mosquitto skips the suite (it says so); in CI it fails (beforeAll throws).
const suite = haveMosquitto || inCi ? describe : describe.skip;
const ZONE = 'America/New_York';

/** The lines of stderr that are not progress or log lines of the simulator. */
const verdicts = (run: CliRun) => run.stderr.split('\n').filter((line) => line && !line.startsWith('[simulate]'));

suite(`the simulator and the broker it publishes to (Mosquitto: ${MOSQUITTO})`, () => {
  let db: TestDatabase;
  let stack: TestStack;
  let mosquitto: Mosquitto;
  let mosquittoUrl: string;
  const from = DateTime.now().setZone(ZONE).minus({ days: 2 }).toISODate()!; // a bare date: local midnight
  const to = DateTime.now().setZone(ZONE).minus({ days: 1 }).toISODate()!;

  beforeAll(async () => {
    if (!haveMosquitto) throw new Error(`Mosquitto is required in CI but ${MOSQUITTO} does not exist (apt-get install mosquitto)`);
    const mode = storageModes()[0]!;
    db = await createTestDatabase(mode, 'honest');
    stack = await startTestStack(mode, {}, db.url);
    // GET /v1 reads the broker's address from the environment of the process it runs in.
    process.env.MQTT_PUBLIC_URL = stack.mqttUrl;
    mosquitto = await startMosquitto();
    mosquittoUrl = mosquitto.url;
  });
  afterAll(async () => {
    delete process.env.MQTT_PUBLIC_URL;
    await mosquitto?.stop();
    await stack?.close();
    await db?.drop();
  });

  const simulate = (args: string[], timeoutMs = 90_000) =>
    runCli(['--api', stack.apiUrl, '--timezone', ZONE, '--seed', 'honest', ...args], timeoutMs);

  it('without --broker publishes to the broker the API serves, and --reconcile finds the ledger in the API to the mWh', async () => {
    const run = await simulate(['--token', TEST_ADMIN_TOKEN, '--provision', '--meters', '4', '--id-prefix', 'H', '--from', from, '--to', to, '--reconcile', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as RunSummary & { reconcile: { meters: number; differences: unknown[] } };
    expect(summary).toMatchObject({ broker: stack.mqttUrl, brokerCheck: 'stored', qos: 1, acked: 4 * 96, failed: 0 });
    expect(summary.reconcile).toEqual({ meters: 4, differences: [] });
    expect(verdicts(run)).toEqual(['reconcile: all 4 meters match the API to the mWh']);
    // A bare --from is local midnight: the first reading is at 00:00 in the accounts' zone.
    const first = await stack.api(`/v1/meters/HMTR-000001/readings?limit=1&from=${DateTime.fromISO(from, { zone: ZONE }).toUTC().toISO()}`);
    expect(DateTime.fromISO(first.body.items[0].intervalStart).setZone(ZONE).toFormat('HH:mm')).toBe('00:00');
  });

  it('refuses, with one line and exit code 3, a broker that acknowledges what the API never stores', async () => {
    // Meters provisioned through the API, readings published to Mosquitto: nothing reaches the API.
    const run = await simulate(['--broker', mosquittoUrl, '--token', TEST_ADMIN_TOKEN, '--provision', '--meters', '4', '--id-prefix', 'M', '--from', from, '--to', to, '--json']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe(''); // no summary: nothing is reported as delivered
    expect(run.stderr).not.toMatch(/\d+ sent, \d+ acked/);
    const lines = verdicts(run);
    // Whichever of the four meters is acknowledged first is the one checked.
    expect(lines).toHaveLength(1);
    expect(lines[0].replace(/MMTR-00000[1-4]/, 'MMTR-00000N')).toBe(
      `simulate: refused: the broker at ${mosquittoUrl} acknowledged a reading that never reached the API at ${stack.apiUrl} ` +
        `(the API has no reading of MMTR-00000N at ${DateTime.fromISO(from, { zone: ZONE }).toUTC().toISO({ suppressMilliseconds: true })} after 10 s): ` +
        `it is not this API's broker (the API serves ${stack.mqttUrl}); leave out --broker to use the API's`,
    );
    expect((await stack.api('/v1/meters/MMTR-000001/readings')).body.items).toEqual([]);

    // A re-run of a window the API already holds (from the first test): the readings are there, but none
    // was received during this run, so nothing shows that this broker delivers to the API.
    const rerun = await simulate(['--broker', mosquittoUrl, '--token', TEST_ADMIN_TOKEN, '--meters', '4', '--id-prefix', 'H', '--from', from, '--to', to, '--json']);
    expect(rerun.code).toBe(3);
    expect(rerun.stdout).toBe('');
    expect(verdicts(rerun)).toHaveLength(1);
    expect(verdicts(rerun)[0]).toMatch(/^simulate: refused: the broker at \S+ is not among the addresses the API at \S+ serves \(\S+\), and the (reading|\d+ readings) it acknowledged that (was|were) checked (was|were all) stored before this run/);
  });

  it('without a token refuses, before sending anything, a --broker that is not among the API\'s addresses', async () => {
    const run = await simulate(['--broker', mosquittoUrl, '--meters', '2', '--from', from, '--to', to]);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(verdicts(run)).toEqual([
      `simulate: refused: --broker ${mosquittoUrl} is not the broker of the API at ${stack.apiUrl}, which serves ${stack.mqttUrl}: ` +
        "leave out --broker to use the API's, give --token to let the simulator check by data, or --bare-broker to publish unverified",
    ]);
  });

  it('says so in one line when the API does not answer', async () => {
    const closed = await freePort();
    const run = await runCli(['--api', `http://127.0.0.1:${closed}`, '--meters', '1', '--from', from, '--to', to]);
    expect(run.code).toBe(3);
    expect(verdicts(run)).toEqual([
      `simulate: refused: cannot reach the billing API at http://127.0.0.1:${closed} (ECONNREFUSED) to learn its broker: ` +
        'start it, give --api, or --bare-broker with --broker to publish without an API',
    ]);
  });

  it('--reconcile lists every meter whose stored readings differ from the ledger, and exits 4', async () => {
    // The API holds the whole day of a first run; a second run of the same fleet leaves gaps: its ledger
    // has fewer readings than the API.
    const fleet = ['--token', TEST_ADMIN_TOKEN, '--provision', '--meters', '3', '--id-prefix', 'G', '--from', from, '--to', to];
    expect((await simulate(fleet)).code).toBe(0);
    const run = await simulate([...fleet, '--faults', 'gap=0.3', '--reconcile']);
    expect(run.code).toBe(4);
    const lines = verdicts(run);
    expect(lines[0]).toBe('reconcile: 3 of 3 meters differ from the API');
    expect(lines.slice(1)).toHaveLength(3);
    for (const [i, line] of lines.slice(1).entries()) {
      expect(line).toMatch(new RegExp(`^  GMTR-00000${i + 1}: readings ledger \\d+ / API 96, importWh ledger [\\d.]+ / API [\\d.]+`));
    }
    expect(run.stdout).toContain('QoS 1');
  });

  it('live: says when the next interval completes, reports the QoS 1 acknowledgement latency, and the summary names QoS 1', async () => {
    const start = DateTime.now().minus({ hours: 3 }).toUTC().toISO({ suppressMilliseconds: true })!;
    const run = await simulate([
      '--token', TEST_ADMIN_TOKEN, '--provision', '--meters', '2', '--id-prefix', 'L', '--interval', '300',
      '--start', start, '--speed', '300', '--duration', '7',
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/live: the first interval completes at \S+ simulated, in \d+ ms \(\S+ wall clock\)/);
    expect(run.stderr).toMatch(/next interval at \d\d:\d\d:\d\d \(in \d+s\)/);
    expect(run.stderr).toMatch(/ack p50 [\d.]+ ms p99 [\d.]+ ms/);
    expect(run.stdout).toMatch(/^live done in [\d.]+ s: 2 meters, 2 devices, QoS 1$/m);
    expect(run.stdout).toMatch(/^ack latency: p50 [\d.]+ ms, p99 [\d.]+ ms/m);
    expect(run.stdout).toContain(`broker: ${stack.mqttUrl}, verified: an acknowledged reading was found through the API`);
  });
});
