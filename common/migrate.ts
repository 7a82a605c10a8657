/**
 * Applies the SQL migrations of ../migrations (node-pg-migrate, which holds an advisory lock so two
 * processes starting at once apply each migration exactly once) after deciding the readings storage mode:
 * TimescaleDB hypertable when the extension can be created in this database, plain table otherwise.
 */
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import pg from 'pg';
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate';
import type { Logger } from './logger.js';

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
export const MIGRATIONS_TABLE = 'schema_migrations';

export type StorageMode = 'timescaledb' | 'plain';

export interface MigrateOptions {
  databaseUrl: string;
  /** auto: TimescaleDB when it can be created; timescaledb: fail without it; plain: never create it. */
  storage: 'auto' | 'timescaledb' | 'plain';
  log: Logger;
}

export class TimescaleRequiredError extends Error {
  constructor(reason: string) {
    super(`TimescaleDB is required (READINGS_STORAGE=timescaledb or REQUIRE_TIMESCALEDB=1 or CI=true) but ${reason}`);
    this.name = 'TimescaleRequiredError';
  }
}

export async function migrate({ databaseUrl, storage, log }: MigrateOptions): Promise<{ storageMode: StorageMode }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  // A migration's RAISE WARNING (migrations/009 lists rows it cannot correct itself) reaches the log.
  client.on('notice', (notice) => {
    if (notice.severity === 'WARNING') log.warn({ migrate: notice.message }, 'migration warning');
  });
  try {
    // One process at a time, from the TimescaleDB decision to the last migration: a second process waits
    // here, then finds everything applied (CREATE EXTENSION and node-pg-migrate's own try-lock are not
    // safe to race). Session advisory locks nest, so the runner's lock on this client is granted.
    await client.query('SELECT pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID]);
    await ensureTimescale(client, storage, log);
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: MIGRATIONS_TABLE,
      // Only the numbered .sql files are migrations (the folder also holds its README).
      ignorePattern: '(\\..*)|(.*\\.md)',
      count: Infinity,
      advisoryLockMode: 'wait',
      log: (msg: string) => log.debug({ migrate: msg }),
      logger: { debug: () => {}, info: (m: string) => log.debug({ migrate: m }), warn: (m: string) => log.warn({ migrate: m }), error: (m: string) => log.error({ migrate: m }) },
    } as Parameters<typeof runner>[0]);
    const storageMode = await readingsStorageMode(client);
    if (storage === 'timescaledb' && storageMode !== 'timescaledb') {
      throw new TimescaleRequiredError('the readings table is a plain table in this database');
    }
    return { storageMode };
  } finally {
    await client.end().catch(() => {});
  }
}

async function ensureTimescale(client: pg.Client, storage: MigrateOptions['storage'], log: Logger): Promise<void> {
  if (storage === 'plain') return;
  const installed = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'`);
  if (installed.rowCount) return;
  const readingsExist = await client.query(`SELECT to_regclass('public.readings') IS NOT NULL AS exists`);
  if (readingsExist.rows[0].exists) {
    // An existing plain-mode database is not converted behind the operator's back.
    if (storage === 'timescaledb') throw new TimescaleRequiredError('this database was created in plain mode');
    return;
  }
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  } catch (err) {
    const reason = `CREATE EXTENSION timescaledb failed: ${(err as Error).message.split('\n')[0]}`;
    if (storage === 'timescaledb') throw new TimescaleRequiredError(reason);
    log.info({ reason }, 'TimescaleDB unavailable: readings use a plain table');
  }
}

export async function readingsStorageMode(client: pg.Client | pg.Pool): Promise<StorageMode> {
  const res = await client.query(
    `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
        AND EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name IN ('readings', 'meter_readings')) AS ht`,
  ).catch(() => ({ rows: [{ ht: false }] }));
  return res.rows[0].ht ? 'timescaledb' : 'plain';
}

/** Whether every migration in ../migrations has been applied (for /readyz). */
export async function migrationsApplied(pool: pg.Pool): Promise<boolean> {
  const { readdirSync } = await import('node:fs');
  const expected = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, ''));
  const res = await pool.query(`SELECT name FROM ${MIGRATIONS_TABLE}`).catch(() => ({ rows: [] as { name: string }[] }));
  const applied = new Set(res.rows.map((r: { name: string }) => r.name));
  return expected.every((name) => applied.has(name));
}
