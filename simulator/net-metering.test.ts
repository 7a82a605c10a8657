/**
 * A net-metered solar fleet through the real stack: `--profile residential-solar --provision` creates the
 * simulator's net-metering tariff through `POST /v1/tariffs/urdb` (`dgrules: "Net Metering"` with
 * `netMetering` beside `rate`) and gives it to the meters, a year of readings is backfilled through the
 * API's gateway, and `--reconcile` holds the simulator's own account of the kWh banks (from its ledger)
 * against the API's charges of every billing window, to the mWh, true-up included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../test/support/stack.js';
import { SIMULATOR_NET_METERING_TARIFF_ID } from './provision/simulator-tariff.js';
import type { ReconcileReport } from './run/api-reconcile.js';
import type { RunSummary } from './run/run-stats.js';
import { runCli } from './test-support/run-cli.js';

const ZONE = 'America/New_York';

describe('a net-metered solar fleet against the real stack', () => {
  let db: TestDatabase;
  let stack: TestStack;

  beforeAll(async () => {
    const mode = storageModes()[0]!;
    db = await createTestDatabase(mode, 'nem_sim');
    stack = await startTestStack(mode, {}, db.url);
    // GET /v1 reads the broker's address from the environment of the process it runs in.
    process.env.MQTT_PUBLIC_URL = stack.mqttUrl;
  });
  afterAll(async () => {
    delete process.env.MQTT_PUBLIC_URL;
    await stack?.close();
    await db?.drop();
  });

  it('a year of residential-solar readings: the kWh banks of every billing window match the API to the mWh', async () => {
    const run = await runCli(
      [
        '--api', stack.apiUrl, '--token', TEST_ADMIN_TOKEN, '--provision',
        '--profile', 'residential-solar', '--meters', '3', '--concentrators', '1', '--batch', '500', '--interval', '3600',
        '--timezone', ZONE, '--from', '2025-01-01', '--to', '2026-01-01', '--seed', 'nem-stack', '--id-prefix', 'N',
        '--reconcile', '--json',
      ],
      240_000,
    );
    const summary = JSON.parse(run.stdout || '{}') as RunSummary & { reconcile: ReconcileReport };
    expect(summary.reconcile?.netMetering?.differences ?? [], run.stderr).toEqual([]);
    expect(run.code, run.stderr).toBe(0);
    expect(summary.reconcile.differences).toEqual([]);
    expect(summary.reconcile.netMetering).toMatchObject({ meters: 3, windows: 36, trueUps: 3 });
    expect(Number(summary.reconcile.netMetering!.peakBankKwh)).toBeGreaterThan(100);

    const tariff = await stack.api(`/v1/tariffs/${SIMULATOR_NET_METERING_TARIFF_ID}`);
    expect(JSON.stringify(tariff.body)).toContain('net_metering');
    const meter = await stack.api('/v1/meters/NMTR-000001');
    expect(meter.body).toMatchObject({ tariffId: SIMULATOR_NET_METERING_TARIFF_ID });

    // In July the bank carried out is positive; in December the true-up settles it and nothing is carried.
    const july = await stack.api('/v1/meters/NMTR-000001/charges?from=2025-07-01T04:00:00Z&to=2025-08-01T04:00:00Z');
    const banks = (july.body as { metering: { carriedOut: { banks: { kWh: string }[] } } }).metering.carriedOut.banks;
    expect(banks.reduce((sum, b) => sum + Number(b.kWh), 0)).toBeGreaterThan(0);
    const december = await stack.api('/v1/meters/NMTR-000001/charges?from=2025-12-01T05:00:00Z&to=2026-01-01T05:00:00Z');
    const metering = (december.body as { metering: { trueUp: boolean; carriedOut: { banks: unknown[] } } }).metering;
    expect(metering).toMatchObject({ trueUp: true, carriedOut: { banks: [] } });
  }, 300_000);
});
