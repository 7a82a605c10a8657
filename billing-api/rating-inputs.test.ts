/**
 * How charges and bill runs read their inputs (packed, in few statements, tariff versions cached) against
 * the straightforward reads, on the real database:
 * - GET /v1/meters/{id}/charges loads everything in one statement (intervals packed by PostgreSQL) and
 *   reuses immutable tariff versions: its answers must equal rating the rows read one by one with the
 *   documents read afresh, across tariff versions and assignment changes, estimates, empty windows and
 *   energies beyond 2^53; and a version or assignment written through another pool (another process) must
 *   be seen by the very next request.
 * - The packed interval loads of bill runs, running charges and consumption must return exactly the stored rows.
 * - `bills_closed_total{trigger}` counts committed bills.
 */
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../common/db.js';
import { createLogger } from '../common/logger.js';
import { exampleTariff, rateWindow, resolveTariffTimeline, type MeterInterval, type TariffDocument } from '../rating/index.js';
import { createTestDatabase, storageModes, type TestDatabase } from '../test/support/database.js';
import { ChargesRepository } from './charges/charges.repository.js';
import { ChargesService } from './charges/charges.service.js';
import { httpErrorOf, type ApiError } from './http/errors.js';
import { TariffsRepository } from './tariffs/tariffs.repository.js';
import { ReadingsRepository } from './readings/readings.repository.js';
import { createBillingApi } from './services.js';

const ZONE = 'America/Los_Angeles';
const JULY = { from: Date.parse('2026-07-01T07:00:00Z'), to: Date.parse('2026-08-01T07:00:00Z') };

/** The path the charges endpoint took before: rows one by one, every version's document read afresh. */
async function referenceCharges(pool: Pool, meterId: string, from: number, to: number) {
  const meter = await pool.query('SELECT interval_seconds FROM meters WHERE id = $1', [meterId]);
  const rows = await pool.query({
    text: `SELECT (extract(epoch FROM interval_start) * 1000)::bigint AS s, interval_seconds AS n, import_mwh AS i, export_mwh AS e, quality AS q
           FROM readings WHERE meter_id = $1 AND interval_start >= to_timestamp($2::float8 / 1000) AND interval_start < to_timestamp($3::float8 / 1000)
           ORDER BY interval_start`,
    values: [meterId, from, to],
    rowMode: 'array',
  });
  const intervals: MeterInterval[] = rows.rows.map((r) => ({ intervalStart: Number(r[0]), intervalSeconds: r[1], importMwh: r[2], exportMwh: r[3], quality: r[4] }));
  const assignments = (
    await pool.query(
      `SELECT tariff_id, CASE WHEN effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM effective_from) * 1000)::float8 END AS from_ms
       FROM meter_tariffs WHERE meter_id = $1 ORDER BY effective_from`,
      [meterId],
    )
  ).rows.map((r) => ({ tariffId: r.tariff_id, effectiveFrom: r.from_ms === null ? Number.NEGATIVE_INFINITY : Number(r.from_ms) }));
  const documents: TariffDocument[] = (
    await pool.query('SELECT document FROM tariffs WHERE id = ANY($1::text[]) ORDER BY id, version', [[...new Set(assignments.map((a) => a.tariffId))]])
  ).rows.map((r) => r.document);
  const charges = rateWindow({ tariffTimeline: resolveTariffTimeline(assignments, documents), intervals, billingWindow: { from, to }, meterIntervalSeconds: meter.rows[0].interval_seconds });
  const { tariffIds, ...rest } = charges;
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  return { meterId, from: iso(from), to: iso(to), ...rest, tariffId: charges.pieces[charges.pieces.length - 1]?.tariffId ?? tariffIds[tariffIds.length - 1], tariffIds };
}

describe.each(storageModes())('rating inputs of charges and bill runs (%s storage)', (mode) => {
  let db: TestDatabase;
  let other: Pool;

  const insertTariff = (pool: Pool, document: TariffDocument, version: number) =>
    pool.query('INSERT INTO tariffs (id, version, effective_from, document) VALUES ($1, $2, $3, $4)', [document.id, version, document.effectiveFrom ?? null, JSON.stringify(document)]);

  beforeAll(async () => {
    db = await createTestDatabase(mode, 'fastpaths');
    other = createPool(db.url, 2);
    const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
    await q(`INSERT INTO accounts VALUES ('ACC-1', 'One', $1, 1), ('ACC-2', 'Two', $1, 1)`, [ZONE]);
    await q(`INSERT INTO devices (id, kind, secret_hash) SELECT 'M-' || g, 'meter', 'x' FROM generate_series(1, 4) g`);
    await q(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ('M-1', 'ACC-1', $1, 900), ('M-2', 'ACC-1', $1, 900), ('M-3', 'ACC-2', $1, 900), ('M-4', 'ACC-2', $1, 900)`, [ZONE]);
    await insertTariff(db.pool, { ...exampleTariff, effectiveFrom: undefined } as TariffDocument, 1);
    await insertTariff(db.pool, { ...exampleTariff, effectiveFrom: '2026-07-15T00:00:00-07:00', fixedCharges: [{ name: 'Service charge', amount: '0.55', per: 'day' }] }, 2);
    await q(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) SELECT 'M-' || g, '-infinity', $1 FROM generate_series(1, 3) g`, [exampleTariff.id]);
    // July and a few days around it, 15-minute; M-2 with estimates and a gap; M-3 with one interval beyond 2^53.
    await q(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT 'M-' || m, timestamptz '2026-06-28T07:00:00Z' + s * interval '15 minutes', 900,
              (40000 + (m * 7919 + s * 104729) % 300000)::bigint, CASE WHEN s % 96 BETWEEN 40 AND 64 THEN ((m + s) % 50000)::bigint ELSE 0 END,
              CASE WHEN m = 2 AND s % 97 = 0 THEN 'estimated' ELSE 'actual' END
       FROM generate_series(1, 3) m, generate_series(0, 96 * 38 - 1) s
       WHERE NOT (m = 2 AND s BETWEEN 1000 AND 1010)`,
    );
    await q(`UPDATE readings SET import_mwh = 9007199254740993 WHERE meter_id = 'M-3' AND interval_start = '2026-07-10T12:00:00Z'`);
  });
  afterAll(async () => {
    await other?.end();
    await db?.drop();
  });

  it('charges from one statement and cached tariff versions equal the row-by-row path with fresh documents', async () => {
    const charges = new ChargesService(new ChargesRepository(db.pool), new TariffsRepository(db.pool));
    const windows = [
      JULY,
      { from: JULY.from, to: Date.parse('2026-07-15T07:00:00Z') },
      { from: Date.parse('2026-07-10T10:07:00Z'), to: Date.parse('2026-07-20T00:00:00Z') },
      { from: Date.parse('2026-08-20T00:00:00Z'), to: Date.parse('2026-08-21T00:00:00Z') }, // no readings
    ];
    for (const meterId of ['M-1', 'M-2', 'M-3']) {
      for (const { from, to } of windows) {
        for (let twice = 0; twice < 2; twice++) {
          expect(await charges.forMeter(meterId, from, to), `${meterId} ${from}-${to}`).toEqual(await referenceCharges(db.pool, meterId, from, to));
        }
      }
    }
    const huge = await charges.intervals('M-3', JULY.from, JULY.to);
    expect(huge.find((i) => i.intervalStart === Date.parse('2026-07-10T12:00:00Z'))?.importMwh).toBe(9007199254740993n);
  });

  it('refuses as before: unknown meter 404, no assignment 409, another account scoped out before reading', async () => {
    const charges = new ChargesService(new ChargesRepository(db.pool), new TariffsRepository(db.pool));
    // As the API answers them: the error handler's mapping of what the service throws.
    const answer = (call: Promise<unknown>) =>
      call.then(
        () => null,
        (err: unknown) => ((err as { statusCode?: number }).statusCode !== undefined ? (err as ApiError) : httpErrorOf(err as Parameters<typeof httpErrorOf>[0], { body: undefined, query: {}, params: {} })),
      );
    expect(await answer(charges.forMeter('NOPE', JULY.from, JULY.to))).toMatchObject({ statusCode: 404 });
    expect(await answer(charges.forMeter('M-4', JULY.from, JULY.to))).toMatchObject({ statusCode: 409, code: 'no_tariff' });
    const seen: string[] = [];
    expect(
      await answer(charges.forMeter('M-1', JULY.from, JULY.to, {
        scopeAccountId: 'ACC-2',
        authorize: (accountId) => {
          seen.push(accountId);
          if (accountId !== 'ACC-2') throw Object.assign(new Error('not found'), { statusCode: 404 });
        },
      })),
    ).toMatchObject({ statusCode: 404 });
    expect(seen).toEqual(['ACC-1']);
    expect(await charges.forMeter('M-3', JULY.from, JULY.to, { scopeAccountId: 'ACC-2' })).toMatchObject({ meterId: 'M-3' });
  });

  it('sees a new tariff version and a new assignment written by another process at the next request', async () => {
    const charges = new ChargesService(new ChargesRepository(db.pool), new TariffsRepository(db.pool));
    const window = { from: Date.parse('2026-07-20T07:00:00Z'), to: Date.parse('2026-07-25T07:00:00Z') };
    const before = await charges.forMeter('M-1', window.from, window.to);
    await insertTariff(other, { ...exampleTariff, effectiveFrom: '2026-07-22T00:00:00-07:00', fixedCharges: [{ name: 'Service charge', amount: '0.75', per: 'day' }] }, 3);
    const afterVersion = await charges.forMeter('M-1', window.from, window.to);
    expect(afterVersion).not.toEqual(before);
    expect(afterVersion).toEqual(await referenceCharges(db.pool, 'M-1', window.from, window.to));
    await insertTariff(other, { ...exampleTariff, id: 'other-tariff', name: 'Other', effectiveFrom: undefined } as TariffDocument, 1);
    await other.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ('M-1', '2026-07-23T07:00:00Z', 'other-tariff')`);
    const afterAssignment = await charges.forMeter('M-1', window.from, window.to);
    expect(afterAssignment.tariffIds).toEqual([exampleTariff.id, 'other-tariff']);
    expect(afterAssignment).toEqual(await referenceCharges(db.pool, 'M-1', window.from, window.to));
  });

  it('the packed interval loader returns exactly the stored rows, windows in order, empty windows empty', async () => {
    const windows = [
      { meterId: 'M-3', from: JULY.from, to: JULY.to, intervalSeconds: 900 },
      { meterId: 'M-4', from: JULY.from, to: JULY.to, intervalSeconds: 900 },
      { meterId: 'M-2', from: JULY.from - 3_600_000, to: JULY.to + 3_600_000, intervalSeconds: 900 },
    ];
    const loaded = await new ReadingsRepository(db.pool).windows(windows);
    for (const [k, w] of windows.entries()) {
      const rows = await db.pool.query(
        `SELECT (extract(epoch FROM interval_start) * 1000)::float8 AS s, import_mwh::text AS i, export_mwh::text AS e, quality AS q
         FROM readings WHERE meter_id = $1 AND interval_start >= $2 AND interval_start < $3 ORDER BY interval_start`,
        [w.meterId, new Date(w.from), new Date(w.to)],
      );
      expect(loaded[k].map((r) => [r.intervalStart, String(r.importMwh), String(r.exportMwh), r.quality])).toEqual(rows.rows.map((r) => [r.s, r.i, r.e, r.q]));
    }
    expect(loaded[1]).toEqual([]);
    expect(loaded[0].find((r) => typeof r.importMwh === 'bigint')?.importMwh).toBe(9007199254740993n);
  });

  it('counts the bills a run closes in bills_closed_total{trigger}, once committed', async () => {
    const registry = new Registry();
    const billsClosed = new Counter({ name: 'bills_closed_total', help: 'Bills closed', labelNames: ['trigger'], registers: [registry] });
    const { billing } = createBillingApi(db.pool, createLogger('silent'), { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0, billsClosed });
    // Both accounts close June (first readings 28 June), then July; M-3's interval beyond 2^53 is rated exactly.
    const first = await billing.closeCycles(Date.parse('2026-07-10T00:00:00Z'), 'schedule');
    expect(first).toMatchObject({ billsCreated: 2, failures: [] });
    expect((await billsClosed.get()).values).toEqual([{ labels: { trigger: 'schedule' }, value: 2 }]);
    const second = await billing.closeCycles(Date.parse('2026-08-10T00:00:00Z'), 'api');
    expect(second).toMatchObject({ billsCreated: 2, failures: [] });
    const again = await billing.closeCycles(Date.parse('2026-08-10T00:00:00Z'), 'api');
    expect(again.billsCreated).toBe(0);
    const values = Object.fromEntries((await billsClosed.get()).values.map((v) => [v.labels.trigger, v.value]));
    expect(values).toEqual({ schedule: 2, api: 2 });
    expect(await registry.metrics()).toMatch(/bills_closed_total\{trigger="api"\} 2/);
  });

  it("reports an account's first failing meter in meter order, also when an earlier meter waited for its history", async () => {
    // F-1 (a whole July day missing: a profile gap, so it is rated after the history query) and F-2 (complete)
    // have no tariff: both fail, and the run names F-1, as rating the meters in order would.
    const q = (sql: string, values: unknown[] = []) => db.pool.query(sql, values);
    await q(`INSERT INTO accounts VALUES ('ACC-F', 'Failing', $1, 1)`, [ZONE]);
    await q(`INSERT INTO devices (id, kind, secret_hash) VALUES ('F-1', 'meter', 'x'), ('F-2', 'meter', 'x')`);
    await q(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ('F-1', 'ACC-F', $1, 900), ('F-2', 'ACC-F', $1, 900)`, [ZONE]);
    await q(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
       SELECT m, timestamptz '2026-06-01T07:00:00Z' + s * interval '15 minutes', 900, 100000, 0, 'actual'
       FROM unnest(ARRAY['F-1', 'F-2']) m, generate_series(0, 96 * 31 - 1) s
       WHERE NOT (m = 'F-1' AND s BETWEEN 96 * 10 AND 96 * 11)`,
    );
    const { billing } = createBillingApi(db.pool, createLogger('silent'), { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0 });
    const run = await billing.closeCycles(Date.parse('2026-08-10T00:00:00Z'), 'api');
    expect(run.billsCreated).toBe(0);
    expect(run.failures).toEqual([expect.objectContaining({ accountId: 'ACC-F', code: 'no_tariff_in_effect', message: expect.stringContaining('"F-1"') })]);
  });
});
