/**
 * Where the tests' PostgreSQL is: TEST_DATABASE_URL when set, else the local server on 127.0.0.1:5432 when
 * one answers, else an embedded one started by the global setup. Each test file makes its own databases.
 */
import pg from 'pg';

export const LOCAL_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function timescaleAvailable(adminUrl: string): Promise<{ available: boolean; reason: string }> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const ext = await client.query(`SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'`);
    if (!ext.rowCount) return { available: false, reason: 'the timescaledb extension is not installed on this server' };
    const preload = await client.query(`SHOW shared_preload_libraries`);
    if (!String(preload.rows[0].shared_preload_libraries).includes('timescaledb')) {
      return { available: false, reason: 'timescaledb is not in shared_preload_libraries' };
    }
    return { available: true, reason: `timescaledb ${ext.rows[0].default_version}` };
  } finally {
    await client.end();
  }
}

export function timescaleRequiredForTests(): boolean {
  const on = (v: string | undefined) => v === '1' || v === 'true';
  return on(process.env.CI) || on(process.env.REQUIRE_TIMESCALEDB);
}
