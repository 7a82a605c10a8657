/** `npm run migrate`: applies the migrations to DATABASE_URL (or the embedded database) and exits. */
import { loadConfig, timescaleRequired, ConfigError } from './config.js';
import { createLogger } from './logger.js';
import { migrate } from './migrate.js';
import { startEmbeddedPostgres } from './db.js';

try {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL, 'migrate');
  const embedded = config.DATABASE_URL ? null : await startEmbeddedPostgres(config.DATA_DIR, log);
  const storage = timescaleRequired(config) ? 'timescaledb' : config.READINGS_STORAGE;
  const { storageMode } = await migrate({ databaseUrl: config.DATABASE_URL ?? embedded!.url, storage, log });
  console.log(`migrations applied; readings storage: ${storageMode === 'timescaledb' ? 'TimescaleDB hypertable' : 'plain table'}`);
  await embedded?.stop();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migrate failed: ${(err as Error).message}`);
  process.exit(1);
}
