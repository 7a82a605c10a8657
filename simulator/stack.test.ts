/**
 * The simulator against the real stack: it provisions through the REST API, backfills through the real
 * gateway (its own process) into the real database with faults, and its ledger reconciles with what the
 * database stored, to the mWh. A second run while the gateway is killed and restarted reconciles too. A
 * commercial fleet's reactive energy is stored to the varh and reconciles through the API.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.js';
import { freePort } from '../common/db.js';
import { createLogger } from '../common/logger.js';
import { startStack, type Stack } from '../test/support/stack.js';
import { mwhToWhString } from '../common/reading.js';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { startGatewayProcess } from '../test/support/processes.js';
import type { LedgerDocument } from './run/ledger.js';
import { describeDifferences, reconcileWithApi } from './run/api-reconcile.js';
import { ApiClient } from './provision/api-client.js';
import { runCli } from './test-support/run-cli.js';

const TOKEN = 'simulator-stack-test-token-0123456789';

describe.each(storageModes())('simulator against the real stack (%s storage)', (mode) => {
  let db: TestDatabase;
  let api: Stack;
  let gateway: ChildProcess | null = null;
  let mqttPort: number;
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'simulator-stack-'));
    db = await createTestDatabase(mode, 'sim');
    const config = loadConfig({ DATABASE_URL: db.url, READINGS_STORAGE: mode, API_PORT: '0', API_HOST: '127.0.0.1', BILLING_ADMIN_TOKEN: TOKEN, LOG_LEVEL: 'silent', BILLING_CRON: 'off' });
    api = await startStack({ config, log: createLogger('silent'), components: { gateway: false, api: true } });
    mqttPort = await freePort();
    gateway = await startGatewayProcess(db.url, mqttPort, mode);
    // GET /v1 lists the gateway's own process as the broker (read from the environment of the process it runs in).
    process.env.MQTT_PUBLIC_URL = `mqtt://127.0.0.1:${mqttPort}`;
  });
  afterAll(async () => {
    delete process.env.MQTT_PUBLIC_URL;
    gateway?.kill('SIGKILL');
    await api?.stop();
    await db?.drop();
    await rm(directory, { recursive: true, force: true });
  });

  /** Per meter: stored readings, import and export, as the ledger writes them. */
  async function stored(prefix: string, from: string, to: string) {
    const res = await db.pool.query(
      `SELECT meter_id, count(*)::int AS n, sum(import_mwh)::text AS i, sum(export_mwh)::text AS e FROM readings
       WHERE meter_id LIKE $1 AND interval_start >= $2 AND interval_start < $3 GROUP BY meter_id`,
      [`${prefix}%`, from, to],
    );
    return Object.fromEntries(res.rows.map((r) => [r.meter_id, { readings: r.n, importWh: mwhToWhString(r.i), exportWh: mwhToWhString(r.e) }]));
  }

  const simulate = (args: string[], timeoutMs = 90_000) =>
    runCli(
      [
        '--broker', `mqtt://127.0.0.1:${mqttPort}`,
        '--api', `http://127.0.0.1:${api.ports.api}`,
        '--token', TOKEN,
        '--provision', '--qos', '1', '--json',
        ...args,
      ],
      timeoutMs,
    );

  it('a faulty backfill through concentrators reconciles exactly with the ledger', async () => {
    const ledgerPath = join(directory, 'faulty.json');
    const from = '2025-03-08T00:00:00Z';
    const to = '2025-03-11T00:00:00Z';
    const run = await simulate([
      '--meters', '30', '--concentrators', '3', '--batch', '50', '--id-prefix', 'F',
      '--from', from, '--to', to, '--seed', 'stack-faults',
      '--faults', 'duplicate=0.05,reorder=0.05,invalid=0.03,gap=0.02,late=0.02,conflict=0.02',
      '--ledger', ledgerPath,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
    const meterIds = Object.keys(ledger.meters);
    expect(meterIds).toHaveLength(30);
    const db = await stored(meterIds[0].replace(/\d+$/, ''), from, to);
    expect(db).toEqual(ledger.meters);
    expect(ledger.invalidSent).toBeGreaterThan(0);
    expect(ledger.duplicatesSent).toBeGreaterThan(0);
    const quarantined = Number((await api.pool.query('SELECT count(*) FROM quarantine')).rows[0].count);
    expect(quarantined).toBeGreaterThanOrEqual(ledger.invalidSent);

    // Provisioning is idempotent, and a second identical run (same seed, same faults: same readings, same
    // gaps) stores nothing new.
    const again = await simulate([
      '--meters', '30', '--concentrators', '3', '--batch', '50', '--id-prefix', 'F', '--from', from, '--to', to, '--seed', 'stack-faults',
      '--faults', 'duplicate=0.05,reorder=0.05,invalid=0.03,gap=0.02,late=0.02,conflict=0.02',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(await stored(meterIds[0].replace(/\d+$/, ''), from, to)).toEqual(ledger.meters);
  });

  it("a commercial fleet's reactive energy is stored to the varh and --reconcile finds it in the API", async () => {
    const ledgerPath = join(directory, 'reactive.json');
    const from = '2025-07-14T00:00:00Z';
    const to = '2025-07-16T00:00:00Z';
    const run = await simulate([
      '--profile', 'commercial', '--meters', '6', '--concentrators', '2', '--batch', '48', '--id-prefix', 'Q',
      '--from', from, '--to', to, '--seed', 'stack-reactive', '--faults', 'duplicate=0.05,reorder=0.05,conflict=0.02',
      '--ledger', ledgerPath, '--reconcile',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout) as { reconcile: { meters: number; differences: unknown[] } };
    expect(summary.reconcile).toEqual({ meters: 6, differences: [] });
    const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
    const res = await db.pool.query(
      `SELECT meter_id, count(*)::int AS n, count(reactive_import_mvarh)::int AS rn,
              sum(reactive_import_mvarh)::text AS ri, sum(reactive_export_mvarh)::text AS re,
              sum(import_mwh)::text AS i, min(reactive_import_mvarh % 1000)::int AS rmin, max(reactive_import_mvarh % 1000)::int AS rmax
       FROM readings WHERE meter_id LIKE 'Q%' AND interval_start >= $1 AND interval_start < $2 GROUP BY meter_id`,
      [from, to],
    );
    expect(res.rows).toHaveLength(6);
    for (const row of res.rows) {
      const meter = ledger.meters[row.meter_id]!;
      expect(meter.readings).toBe(2 * 96);
      expect({ n: row.n, rn: row.rn, ri: mwhToWhString(row.ri), re: mwhToWhString(row.re) }).toEqual({
        n: meter.readings, rn: meter.reactiveReadings, ri: meter.reactiveImportVarh, re: meter.reactiveExportVarh,
      });
      expect([row.rmin, row.rmax]).toEqual([0, 0]); // whole varh
      // Between the tangents of acos(0.98) and acos(0.85) times the import, over the two days.
      const ratio = Number(row.ri) / Number(row.i);
      expect(ratio).toBeGreaterThan(0.2);
      expect(ratio).toBeLessThan(0.62);
    }

    // The comparison reads the reactive energy the API stored: one varh more in the ledger is a difference.
    const client = new ApiClient(`http://127.0.0.1:${api.ports.api}`, TOKEN);
    expect((await reconcileWithApi(ledger, client)).differences).toEqual([]);
    const first = Object.keys(ledger.meters)[0]!;
    const changed: LedgerDocument = {
      ...ledger,
      meters: { ...ledger.meters, [first]: { ...ledger.meters[first]!, reactiveImportVarh: String(Number(ledger.meters[first]!.reactiveImportVarh) + 1) } },
    };
    const report = await reconcileWithApi(changed, client);
    expect(report.differences.map((d) => d.meterId)).toEqual([first]);
    expect(report.differences[0]!.api).toEqual(ledger.meters[first]);
    expect(describeDifferences(report)[0]).toContain(
      `reactiveImportVarh ledger ${changed.meters[first]!.reactiveImportVarh} / API ${ledger.meters[first]!.reactiveImportVarh}`,
    );
  });

  it('reconnects through a gateway crash and restart, and the ledger still reconciles', async () => {
    const ledgerPath = join(directory, 'restart.json');
    const from = '2025-06-01T00:00:00Z';
    const to = '2025-06-11T00:00:00Z';
    const running = simulate([
      '--meters', '40', '--concentrators', '4', '--batch', '20', '--rate', '400', '--id-prefix', 'R',
      '--from', from, '--to', to, '--seed', 'stack-restart', '--ack-timeout', '5', '--ledger', ledgerPath,
    ], 120_000);
    // Let the backfill get going, then kill the gateway mid-stream and bring it back on the same port.
    for (let i = 0; i < 200; i++) {
      const n = Number((await db.pool.query(`SELECT count(*) FROM readings WHERE meter_id LIKE 'R%'`)).rows[0].count);
      if (n > 2000) break;
      await sleep(100);
    }
    gateway!.kill('SIGKILL');
    await sleep(1000);
    gateway = await startGatewayProcess(db.url, mqttPort, mode);
    const run = await running;
    expect(run.code, run.stderr).toBe(0);
    const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
    const total = Object.values(ledger.meters).reduce((s, m) => s + m.readings, 0);
    expect(total).toBe(40 * 10 * 96);
    expect(await stored('R', from, to)).toEqual(ledger.meters);
  });
});
