/** The packed-interval codec: records as PostgreSQL sends them, decoded exactly, with the edge cases named. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, storageModes, type TestDatabase } from '../../test/support/database.js';
import { decodePackedIntervals, decodePackedIntervalsBase64, encodePackedIntervals, PACKED_INTERVAL_BYTES, packedIntervalsSql } from './packed-intervals.js';

const PG_EPOCH_MICROS = 946_684_800_000_000n;

/** One record from raw values: microseconds since 2000-01-01, energies, quality byte. */
function record(pgMicros: bigint, importMwh: bigint, exportMwh: bigint, quality: number): Buffer {
  const b = Buffer.alloc(PACKED_INTERVAL_BYTES);
  b.writeBigInt64BE(pgMicros, 0);
  b.writeBigInt64BE(importMwh, 8);
  b.writeBigInt64BE(exportMwh, 16);
  b.writeUInt8(quality, 24);
  return b;
}

describe('packed intervals (pure)', () => {
  it('decodes what it encodes: instants, energies, quality, the interval length given', () => {
    const intervals = [
      { intervalStart: Date.parse('2026-03-08T09:45:00Z'), importMwh: 1234, exportMwh: 0, quality: 'actual' as const },
      { intervalStart: Date.parse('2026-03-08T10:00:00Z'), importMwh: 0, exportMwh: 987_654, quality: 'estimated' as const },
    ];
    expect(decodePackedIntervals(encodePackedIntervals(intervals), 900)).toEqual(intervals.map((i) => ({ ...i, intervalSeconds: 900 })));
  });

  it('reads instants before 2000 and before 1970 (negative microseconds) exactly', () => {
    for (const iso of ['1999-12-31T23:45:00Z', '1970-01-01T00:00:00Z', '1969-12-31T23:59:59.999Z', '0099-01-01T00:00:00Z', '9999-12-31T23:45:00Z']) {
      const at = Date.parse(iso);
      expect(decodePackedIntervals(encodePackedIntervals([{ intervalStart: at, importMwh: 1, exportMwh: 0, quality: 'actual' }]), 900)[0].intervalStart, iso).toBe(at);
    }
  });

  it('rounds sub-millisecond instants half away from zero, as (extract(epoch) * 1000)::bigint does', () => {
    const micros = (unixMicros: bigint) => record(unixMicros - PG_EPOCH_MICROS, 0n, 0n, 1);
    const at = (unixMicros: bigint) => decodePackedIntervals(micros(unixMicros), 900)[0].intervalStart;
    expect(at(1_500n)).toBe(2); // 1.5 ms -> 2
    expect(at(1_499n)).toBe(1);
    expect(at(-1_500n)).toBe(-2); // -1.5 ms -> -2 (away from zero), not -1
    expect(at(-1_499n)).toBe(-1);
    expect(at(946_684_800_000_500n)).toBe(946_684_800_001); // 2000-01-01 plus 0.5 ms
  });

  it('keeps int64 energies exact: numbers while safe, bigints beyond 2^53, either sign', () => {
    const big = 2n ** 53n + 1n;
    const [i] = decodePackedIntervals(record(0n, big, -(2n ** 53n) - 7n, 1), 900);
    expect(i.importMwh).toBe(big);
    expect(i.exportMwh).toBe(-(2n ** 53n) - 7n);
    const [j] = decodePackedIntervals(record(0n, 2n ** 53n - 1n, -5n, 0), 900);
    expect(j.importMwh).toBe(Number.MAX_SAFE_INTEGER);
    expect(j.exportMwh).toBe(-5);
    expect(j.quality).toBe('estimated');
  });

  it('sorts records by start when they arrive out of order', () => {
    const t = Date.parse('2026-01-01T00:00:00Z');
    const packed = encodePackedIntervals([
      { intervalStart: t + 1_800_000, importMwh: 3, exportMwh: 0, quality: 'actual' },
      { intervalStart: t, importMwh: 1, exportMwh: 0, quality: 'actual' },
      { intervalStart: t + 900_000, importMwh: 2, exportMwh: 0, quality: 'actual' },
    ]);
    expect(decodePackedIntervals(packed, 900).map((i) => i.importMwh)).toEqual([1, 2, 3]);
  });

  it('refuses a buffer that is not whole records, and reads nothing as no intervals', () => {
    expect(() => decodePackedIntervals(Buffer.alloc(PACKED_INTERVAL_BYTES + 3), 900)).toThrow(/not a whole number of 25-byte records/);
    expect(decodePackedIntervalsBase64(null, 900)).toEqual([]);
    expect(decodePackedIntervals(Buffer.alloc(0), 900)).toEqual([]);
  });
});

describe.each(storageModes())('packed intervals from PostgreSQL (%s)', (mode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(mode, 'packed');
    await db.pool.query(`INSERT INTO accounts VALUES ('ACC-1', 'One', 'UTC', 1)`);
    await db.pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ('M-1', 'meter', 'x')`);
    await db.pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ('M-1', 'ACC-1', 'UTC', 900)`);
  }, 60_000);
  afterAll(async () => db?.drop());

  it('decodes exactly what the SQL packs, row for row', async () => {
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) VALUES
       ('M-1', '1999-12-31T23:45:00Z', 900, 1, 0, 'actual'),
       ('M-1', '2026-03-08T09:45:00Z', 900, 9007199254740993, 17, 'estimated'),
       ('M-1', '2026-03-08T10:00:00Z', 900, 0, 123456789, 'actual')`,
    );
    const packed = await db.pool.query<{ d: string | null }>(
      `SELECT (SELECT ${packedIntervalsSql('r')} FROM readings r WHERE r.meter_id = 'M-1') AS d`,
    );
    const rows = await db.pool.query(
      `SELECT (extract(epoch FROM interval_start) * 1000)::bigint::text AS at, import_mwh::text AS imp, export_mwh::text AS exp, quality
       FROM readings WHERE meter_id = 'M-1' ORDER BY interval_start`,
    );
    const decoded = decodePackedIntervalsBase64(packed.rows[0].d, 900);
    expect(decoded.map((i) => [String(i.intervalStart), String(i.importMwh), String(i.exportMwh), i.quality])).toEqual(rows.rows.map((r) => [r.at, r.imp, r.exp, r.quality]));
    expect(typeof decoded[1].importMwh).toBe('bigint');
  });
});

describe('packed intervals with reactive energy', () => {
  const t = Date.parse('2026-01-01T00:00:00Z');

  it('carries reactive import and export when present, leaves them absent when not (not 0)', () => {
    const intervals = [
      { intervalStart: t, importMwh: 1, exportMwh: 0, quality: 'actual' as const },
      { intervalStart: t + 900_000, importMwh: 2, exportMwh: 0, quality: 'estimated' as const, reactiveImportMvarh: 0 },
      { intervalStart: t + 1_800_000, importMwh: 3, exportMwh: 4, quality: 'actual' as const, reactiveImportMvarh: 2_500_000, reactiveExportMvarh: 125 },
      { intervalStart: t + 2_700_000, importMwh: 5, exportMwh: 0, quality: 'actual' as const, reactiveExportMvarh: 9_007_199_254_740_993n },
    ];
    const packed = encodePackedIntervals(intervals);
    expect(packed.length).toBe(4 * PACKED_INTERVAL_BYTES + 4 * 8);
    expect(decodePackedIntervals(packed, 900)).toEqual(intervals.map((i) => ({ ...i, intervalSeconds: 900 })));
    expect(() => decodePackedIntervals(packed.subarray(0, packed.length - 1), 900)).toThrow(/not a whole number/);
  });
});

describe.each(storageModes())('packed reactive energy from PostgreSQL (%s)', (mode) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(mode, 'packedreactive');
    await db.pool.query(`INSERT INTO accounts VALUES ('ACC-1', 'One', 'UTC', 1)`);
    await db.pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ('M-1', 'meter', 'x')`);
    await db.pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ('M-1', 'ACC-1', 'UTC', 900)`);
  }, 60_000);
  afterAll(async () => db?.drop());

  it('decodes exactly what the SQL packs, with and without reactive energy', async () => {
    await db.pool.query(
      `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality, reactive_import_mvarh, reactive_export_mvarh) VALUES
       ('M-1', '2026-03-08T09:30:00Z', 900, 1, 0, 'actual', NULL, NULL),
       ('M-1', '2026-03-08T09:45:00Z', 900, 9007199254740993, 17, 'estimated', 0, NULL),
       ('M-1', '2026-03-08T10:00:00Z', 900, 5, 6, 'actual', NULL, 123456789),
       ('M-1', '2026-03-08T10:15:00Z', 900, 7, 0, 'actual', 2500000, 125)`,
    );
    const packed = await db.pool.query<{ d: string | null }>(`SELECT (SELECT ${packedIntervalsSql('r')} FROM readings r WHERE r.meter_id = 'M-1') AS d`);
    const decoded = decodePackedIntervalsBase64(packed.rows[0].d, 900);
    expect(decoded.map((i) => [String(i.importMwh), i.quality, i.reactiveImportMvarh, i.reactiveExportMvarh])).toEqual([
      ['1', 'actual', undefined, undefined],
      ['9007199254740993', 'estimated', 0, undefined],
      ['5', 'actual', undefined, 123456789],
      ['7', 'actual', 2500000, 125],
    ]);
  });
});
