/**
 * Time zones every component knows. A zone name is accepted only when luxon (ICU, which rates and builds
 * cycles) AND PostgreSQL (`AT TIME ZONE` in ingest_readings() and the billing queries) both know it: ICU
 * still accepts names the tz database dropped (`US/Pacific-New`, `Canada/East-Saskatchewan`) that
 * PostgreSQL refuses with an error, and the reverse happens with older ICU data.
 *
 * PostgreSQL's names are read once per pool from `pg_timezone_names` (about 1,200 rows, read from the
 * server's tz files, which change only with a server upgrade and restart) and kept for the pool's life.
 */
import { IANAZone } from 'luxon';
import type { Pool } from './db.js';

const cache = new WeakMap<Pool, Promise<ReadonlySet<string>>>();

/** The zone names PostgreSQL accepts, loaded once per pool (a failed load is retried on the next call). */
export function postgresZoneNames(pool: Pool): Promise<ReadonlySet<string>> {
  let names = cache.get(pool);
  if (!names) {
    names = pool.query<{ name: string }>('SELECT name FROM pg_timezone_names').then((res) => new Set(res.rows.map((r) => r.name)));
    names.catch(() => cache.delete(pool));
    cache.set(pool, names);
  }
  return names;
}

/** Why `zone` cannot be used (a sentence for a 400 detail), or null when luxon and PostgreSQL both know it. */
export async function zoneProblem(pool: Pool, zone: string): Promise<string | null> {
  if (!IANAZone.isValidZone(zone)) return `"${zone}" is not an IANA time zone (such as Europe/London)`;
  if (!(await postgresZoneNames(pool)).has(zone)) {
    return `"${zone}" is not known to the database's time-zone data (a name dropped from the tz database, or spelt differently); use its current name, such as America/Los_Angeles`;
  }
  return null;
}
