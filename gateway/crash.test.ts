/**
 * A crash: the gateway process is killed with SIGKILL in the middle of a stream of QoS 1 batches from many
 * meters, then started again on the same port. The devices reconnect and resend what was not
 * acknowledged; afterwards no reading is lost and none is duplicated.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';
import { freePort } from '../common/db.js';
import { startGatewayProcess } from '../test/support/processes.js';
import { provisionMeters } from '../test/support/devices.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startGateway = startGatewayProcess;

describe.each(storageModes())('gateway killed with SIGKILL mid-stream (%s storage)', (mode) => {
  let db: TestDatabase;
  let gateway: ChildProcess | null = null;
  const METERS = 12;
  const MESSAGES = 30;
  const PER_MESSAGE = 20;

  beforeAll(async () => {
    db = await createTestDatabase(mode, 'crash');
  });
  afterAll(async () => {
    gateway?.kill('SIGKILL');
    await db?.drop();
  });

  it('loses and duplicates nothing', async () => {
    const meterIds = Array.from({ length: METERS }, (_, m) => `MTR-${m}`);
    const secrets = await provisionMeters(db.pool, { accountId: 'ACC-1', accountName: 'Crash test', meterIds });
    const port = await freePort();
    gateway = await startGateway(db.url, port, mode);
    const url = `mqtt://127.0.0.1:${port}`;
    const clients = await Promise.all(
      meterIds.map((id) => connectDevice(url, id, secrets[id], { reconnectPeriod: 100, clean: false, clientId: `${id}:crash` })),
    );
    let acked = 0;
    const streams = clients.map(async (client, m) => {
      // Several messages in flight per device, as a concentrator backlog would be.
      for (let k = 0; k < MESSAGES; k += 3) {
        await Promise.all(
          [k, k + 1, k + 2].filter((x) => x < MESSAGES).map((x) => {
            const readings = Array.from({ length: PER_MESSAGE }, (_, j) => reading(slot('2026-01-01T00:00:00Z', x * PER_MESSAGE + j), (m * 7 + x + j) / 4));
            return publishAcked(client, `meters/${meterIds[m]}/readings`, JSON.stringify({ readings })).then(() => acked++);
          }),
        );
      }
    });
    while (acked < (METERS * MESSAGES) / 3) await sleep(5);
    gateway.kill('SIGKILL');
    const ackedAtKill = acked;
    await sleep(500);
    gateway = await startGateway(db.url, port, mode);
    await Promise.all(streams);
    await Promise.all(clients.map(endClient));

    expect(ackedAtKill).toBeLessThan(METERS * MESSAGES);
    const res = await db.pool.query('SELECT meter_id, count(*)::int AS n, sum(import_mwh)::text AS s FROM readings GROUP BY meter_id ORDER BY meter_id');
    const expected = meterIds
      .map((id, m) => {
        let sum = 0;
        for (let x = 0; x < MESSAGES; x++) for (let j = 0; j < PER_MESSAGE; j++) sum += Math.round(((m * 7 + x + j) / 4) * 1000);
        return { meter_id: id, n: MESSAGES * PER_MESSAGE, s: String(sum) };
      })
      .sort((a, b) => a.meter_id.localeCompare(b.meter_id));
    expect(res.rows).toEqual(expected);
    const q = await db.pool.query('SELECT count(*)::int AS n FROM quarantine');
    expect(q.rows[0].n).toBe(0);
  });
});

describe('SIGTERM', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(storageModes()[0], 'sigterm');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('stops accepting, commits and acknowledges what is in flight, then exits 0', async () => {
    const secrets = await provisionMeters(db.pool, { accountId: 'ACC-1', accountName: 'Sigterm', meterIds: ['MTR-1'] });
    const port = await freePort();
    const child = await startGateway(db.url, port, storageModes()[0]);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const client = await connectDevice(`mqtt://127.0.0.1:${port}`, 'MTR-1', secrets['MTR-1']);

    // Hold the commit back so the message is in flight when SIGTERM arrives.
    const { default: pg } = await import('pg');
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE readings IN ACCESS EXCLUSIVE MODE');
    let acked = false;
    const publish = publishAcked(client, 'meters/MTR-1/readings', JSON.stringify(reading('2026-01-01T00:00:00Z', 5))).then(() => (acked = true));
    await sleep(300);
    child.kill('SIGTERM');
    await sleep(300);
    expect(acked).toBe(false);
    // No new connections while draining.
    await expect(connectDevice(`mqtt://127.0.0.1:${port}`, 'MTR-1', secrets['MTR-1'])).rejects.toThrow();
    await locker.query('COMMIT');
    await locker.end();
    await publish;
    expect(await exited).toBe(0);
    client.end(true);
    const rows = await db.pool.query(`SELECT import_mwh FROM readings WHERE meter_id = 'MTR-1'`);
    expect(rows.rows).toEqual([{ import_mwh: '5000' }]);
  });
});
