/**
 * Migrations against a real PostgreSQL: safe when two processes start at once, readings as a TimescaleDB
 * hypertable or a plain table depending on the storage mode, and the probes used by start-up and /readyz.
 */
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, storageModes } from '../test/support/database.js';
import { createPool } from './db.js';
import { createLogger } from './logger.js';
import { migrate, migrationsApplied, readingsStorageMode, TimescaleRequiredError } from './migrate.js';

const log = createLogger('silent');
/** The migration names, read from the directory independently of the code under test. */
const MIGRATION_NAMES = readdirSync(resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations'))
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.slice(0, -'.sql'.length))
  .sort();

const drops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const drop of drops) await drop().catch(() => {});
});

async function freshDatabase() {
  const db = await createDatabase('migrate');
  const pool = createPool(db.url, 3);
  drops.push(async () => {
    await pool.end().catch(() => {});
    await db.drop();
  });
  return { ...db, pool };
}

const appliedNames = async (pool: pg.Pool) =>
  (await pool.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).rows.map((r) => r.name);

const isHypertable = async (pool: pg.Pool) => {
  const ext = await pool.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`);
  if (!ext.rowCount) return false;
  const ht = await pool.query(`SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' AND hypertable_name = 'meter_readings'`);
  return ht.rowCount === 1;
};

describe('migrate', () => {
  it('finds migrations to apply', () => {
    expect(MIGRATION_NAMES.length).toBeGreaterThanOrEqual(3);
    expect(MIGRATION_NAMES[0]).toBe('001_schema');
  });

  it.each(storageModes())('two migrate() calls at once on a fresh database both succeed and apply each migration once (%s)', async (mode) => {
    const db = await freshDatabase();
    const results = await Promise.allSettled([
      migrate({ databaseUrl: db.url, storage: mode, log }),
      migrate({ databaseUrl: db.url, storage: mode, log }),
    ]);
    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
    for (const r of results) expect((r as PromiseFulfilledResult<{ storageMode: string }>).value.storageMode).toBe(mode);
    expect(await appliedNames(db.pool)).toEqual(MIGRATION_NAMES);
    const counts = await db.pool.query('SELECT name, count(*)::int AS n FROM schema_migrations GROUP BY name HAVING count(*) <> 1');
    expect(counts.rows).toEqual([]);
  });

  it.each(storageModes())('a second migrate() on a migrated database changes nothing (%s)', async (mode) => {
    const db = await freshDatabase();
    await migrate({ databaseUrl: db.url, storage: mode, log });
    const before = (await db.pool.query('SELECT name, run_on FROM schema_migrations ORDER BY name')).rows;
    const again = await migrate({ databaseUrl: db.url, storage: mode, log });
    expect(again.storageMode).toBe(mode);
    expect((await db.pool.query('SELECT name, run_on FROM schema_migrations ORDER BY name')).rows).toEqual(before);
  });

  it('in plain mode the readings table (meter_readings, behind the readings view) is an ordinary table and TimescaleDB is not created', async () => {
    const db = await freshDatabase();
    const { storageMode } = await migrate({ databaseUrl: db.url, storage: 'plain', log });
    expect(storageMode).toBe('plain');
    expect(await isHypertable(db.pool)).toBe(false);
    expect((await db.pool.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`)).rowCount).toBe(0);
    const kind = await db.pool.query(`SELECT relkind FROM pg_class WHERE oid = 'public.meter_readings'::regclass`);
    expect(kind.rows[0].relkind).toBe('r');
    expect((await db.pool.query(`SELECT relkind FROM pg_class WHERE oid = 'public.readings'::regclass`)).rows[0].relkind).toBe('v');
    expect(await readingsStorageMode(db.pool)).toBe('plain');
    // One row per (meter, interval start): the key columns (indnkeyatts) are those two; the rest is INCLUDEd.
    const pk = await db.pool.query(
      `SELECT (array_agg(a.attname::text ORDER BY k.ord))[1:max(i.indnkeyatts)] AS cols
       FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = 'public.meter_readings'::regclass AND i.indisprimary`,
    );
    expect(pk.rows[0].cols).toEqual(['meter_key', 'interval_start']);
  });

  it.runIf(storageModes().includes('timescaledb'))('in timescaledb mode meter_readings is a hypertable on interval_start', async () => {
    const db = await freshDatabase();
    const { storageMode } = await migrate({ databaseUrl: db.url, storage: 'timescaledb', log });
    expect(storageMode).toBe('timescaledb');
    expect(await isHypertable(db.pool)).toBe(true);
    const dim = await db.pool.query(`SELECT column_name FROM timescaledb_information.dimensions WHERE hypertable_name = 'meter_readings'`);
    expect(dim.rows.map((r) => r.column_name)).toEqual(['interval_start']);
    expect(await readingsStorageMode(db.pool)).toBe('timescaledb');
  });

  it.runIf(storageModes().includes('timescaledb'))('auto mode creates TimescaleDB when it is installable', async () => {
    const db = await freshDatabase();
    const { storageMode } = await migrate({ databaseUrl: db.url, storage: 'auto', log });
    expect(storageMode).toBe('timescaledb');
    expect(await isHypertable(db.pool)).toBe(true);
  });

  it.runIf(storageModes().includes('timescaledb'))('refuses timescaledb mode on a database created in plain mode instead of converting it', async () => {
    const db = await freshDatabase();
    await migrate({ databaseUrl: db.url, storage: 'plain', log });
    await expect(migrate({ databaseUrl: db.url, storage: 'timescaledb', log })).rejects.toBeInstanceOf(TimescaleRequiredError);
    // auto keeps the plain database as it is
    expect((await migrate({ databaseUrl: db.url, storage: 'auto', log })).storageMode).toBe('plain');
    expect(await isHypertable(db.pool)).toBe(false);
  });

  it.runIf(storageModes().includes('timescaledb'))('compression: enabled with a 90-day policy where licensed; on the Apache edition the statements parse and only the license refuses them', async () => {
    const db = await freshDatabase();
    await migrate({ databaseUrl: db.url, storage: 'timescaledb', log });
    const license = (await db.pool.query(`SELECT current_setting('timescaledb.license') AS l`)).rows[0].l;
    const jobs = await db.pool.query(`SELECT config FROM timescaledb_information.jobs WHERE hypertable_name = 'meter_readings' AND proc_name = 'policy_compression'`);
    if (license === 'timescale') {
      expect(jobs.rows).toHaveLength(1);
      expect(jobs.rows[0].config.compress_after).toBe('90 days');
    } else {
      // The Apache edition (this machine, CI): no policy, and running the same statements fails on the
      // license check, which comes after parsing and option validation, never on a syntax error.
      expect(jobs.rows).toHaveLength(0);
      await expect(db.pool.query(`SELECT smbg_enable_readings_compression(interval '90 days')`)).rejects.toThrow(/license/i);
    }
  });

  it('readingsStorageMode() says plain on an empty database (no readings table, no extension)', async () => {
    const db = await freshDatabase();
    expect(await readingsStorageMode(db.pool)).toBe('plain');
  });

  it('migrationsApplied() is false before migrating, false when one is missing, and true after', async () => {
    const db = await freshDatabase();
    expect(await migrationsApplied(db.pool)).toBe(false);
    await migrate({ databaseUrl: db.url, storage: 'plain', log });
    expect(await migrationsApplied(db.pool)).toBe(true);
    await db.pool.query('DELETE FROM schema_migrations WHERE name = $1', [MIGRATION_NAMES[MIGRATION_NAMES.length - 1]]);
    expect(await migrationsApplied(db.pool)).toBe(false);
  });
});
