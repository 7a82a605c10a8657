/**
 * The simulator against the real stack: it provisions through the REST API, backfills through the real
 * gateway (its own process) into the real database with faults, and its ledger reconciles with what the
 * database stored, to the mWh. A second run while the gateway is killed and restarted reconciles too.
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
