/**
 * Runs once before all test files: finds (or starts) PostgreSQL and decides the storage modes under test.
 * With CI=true or REQUIRE_TIMESCALEDB=1, a missing TimescaleDB fails the run instead of narrowing it.
 * Worker processes inherit the TEST_PG_ADMIN_URL and TEST_STORAGE_MODES variables set here.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answers, LOCAL_ADMIN_URL, timescaleAvailable, timescaleRequiredForTests } from './support/postgres.js';

export default async function setup() {
  let adminUrl = process.env.TEST_DATABASE_URL ?? LOCAL_ADMIN_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  if (!(await answers(adminUrl))) {
    if (process.env.TEST_DATABASE_URL) throw new Error(`TEST_DATABASE_URL ${adminUrl} does not answer`);
    const { createLogger } = await import('../common/logger.js');
    const { startEmbeddedPostgres } = await import('../common/db.js');
    const dir = mkdtempSync(join(tmpdir(), 'smbg-test-pg-'));
    const embedded = await startEmbeddedPostgres(dir, createLogger('silent'));
    adminUrl = embedded.url.replace(/\/smbg$/, '/postgres');
    stopEmbedded = embedded.stop;
  }
  const timescale = await timescaleAvailable(adminUrl);
  if (!timescale.available && timescaleRequiredForTests()) {
    throw new Error(`TimescaleDB is required (CI=true or REQUIRE_TIMESCALEDB=1) but ${timescale.reason}. Install it with scripts/install-timescaledb.sh.`);
  }
  process.env.TEST_PG_ADMIN_URL = adminUrl;
  process.env.TEST_STORAGE_MODES = timescale.available ? 'timescaledb,plain' : 'plain';
  console.log(`[tests] PostgreSQL ${adminUrl}; storage modes under test: ${process.env.TEST_STORAGE_MODES}${timescale.available ? '' : ` (${timescale.reason})`}`);
  return async () => {
    await stopEmbedded?.();
  };
}
