/**
 * The database as every process needs it: reachable (DATABASE_URL, or an embedded PostgreSQL under
 * DATA_DIR when it is unset), migrated, pooled, and holding this installation's ingest policy
 * (READING_BACKFILL_DAYS, which `ingest_readings()` reads from `ingest_policy`).
 */
import { timescaleRequired, type Config } from '../common/config.js';
import { createPool, retry, startEmbeddedPostgres, type Pool } from '../common/db.js';
import type { Logger } from '../common/logger.js';
import { migrate, type StorageMode } from '../common/migrate.js';

export interface Database {
  pool: Pool;
  url: string;
  /** embedded: started by this process under DATA_DIR; external: DATABASE_URL */
  mode: 'external' | 'embedded';
  storageMode: StorageMode;
  close(): Promise<void>;
}

export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  const embedded = config.DATABASE_URL ? null : await startEmbeddedPostgres(config.DATA_DIR, log);
  const url = config.DATABASE_URL ?? embedded!.url;
  let pool: Pool | null = null;
  const close = async () => {
    await pool?.end().catch((err) => log.warn({ err }, 'shutdown step failed'));
    await embedded?.stop().catch((err) => log.warn({ err }, 'shutdown step failed'));
  };
  try {
    const storage = timescaleRequired(config) ? 'timescaledb' : config.READINGS_STORAGE;
    const { storageMode } = await retry(
      () => migrate({ databaseUrl: url, storage, log }),
      10,
      (err, attempt) => log.warn({ err: (err as Error).message, attempt }, 'database not ready; retrying'),
    );
    pool = createPool(url, config.PG_POOL_MAX);
    await pool.query('UPDATE ingest_policy SET reading_backfill_days = $1 WHERE reading_backfill_days IS DISTINCT FROM $1', [config.READING_BACKFILL_DAYS]);
    return { pool, url, mode: embedded ? 'embedded' : 'external', storageMode, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The summary line of the database. */
export function describeDatabase(database: Database, config: Config): string {
  const where = database.mode === 'embedded' ? `embedded PostgreSQL under ${config.DATA_DIR}/pg` : 'DATABASE_URL';
  const readings = database.storageMode === 'timescaledb' ? 'TimescaleDB hypertable' : 'plain table (TimescaleDB not available)';
  return `Database           ${where}; readings in a ${readings}`;
}
