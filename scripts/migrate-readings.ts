/**
 * `npm run migrate-readings`: moves a large readings table to the narrow layout ahead of the upgrade, while
 * the previous version keeps running and writing (DATABASE_URL as for `npm run migrate`).
 *
 * 1. Applies migrations/012 (the new table and the copy functions; additive and idempotent, the previous
 *    version does not notice it).
 * 2. Copies the old readings week by week of interval_start, one transaction per week, recorded in
 *    readings_layout_copy: stopped or failed at any point, a rerun continues with the weeks not recorded.
 * 3. Copies what was written into copied weeks meanwhile (readings committed since the first copy, found by
 *    received_at), and reports the meters whose counts or sums still differ (late writes continue until the
 *    upgrade).
 *
 * Then upgrade as usual: migration 013 copies only what was written since, checks every meter's count and
 * sums against the old table, drops it and puts the readings view in its place. Without this command 013
 * copies everything itself, in the transaction of the upgrade: fine for small tables, slow for large ones
 * (see migrations/README.md for measured rates).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const LAYOUT_MIGRATION = '012_meter_readings_layout';
const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
/** any constant distinct from node-pg-migrate's lock: one copy at a time */
const COPY_LOCK_ID = 7_241_865_325_823_013;

export interface CopyAheadResult {
  /** the readings table is already the view: nothing to copy */
  alreadyMigrated: boolean;
  weeksCopied: number;
  weeksTotal: number;
  rowsCopied: number;
  deltaRows: number;
  /** meters whose count or sums differ after the copy (writes since, or rows deleted from the old table) */
  mismatchedMeters: number;
}

/** The up section of a migration file. */
function upSql(name: string): string {
  const text = readFileSync(resolve(MIGRATIONS_DIR, `${name}.sql`), 'utf8');
  const up = text.split('-- Down Migration')[0];
  return up.replace('-- Up Migration', '');
}

export async function copyReadingsAhead(o: { databaseUrl: string; log?: (line: string) => void; verify?: boolean }): Promise<CopyAheadResult> {
  const log = o.log ?? (() => {});
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [COPY_LOCK_ID]);
    const kind = (await client.query(`SELECT relkind FROM pg_class WHERE oid = to_regclass('public.readings')`)).rows[0]?.relkind;
    if (kind === undefined) throw new Error('no readings table in this database: nothing to migrate (run npm run migrate)');
    if (kind === 'v') {
      log('readings is already the view over meter_readings: nothing to copy');
      return { alreadyMigrated: true, weeksCopied: 0, weeksTotal: 0, rowsCopied: 0, deltaRows: 0, mismatchedMeters: 0 };
    }
    await client.query(upSql(LAYOUT_MIGRATION));

    const range = (await client.query(`SELECT min(interval_start) AS lo, max(interval_start) AS hi FROM readings`)).rows[0];
    const weeks: { from: Date; to: Date }[] = [];
    if (range.lo) {
      const res = await client.query<{ f: Date; t: Date }>(
        `SELECT w AS f, w + interval '7 days' AS t
         FROM generate_series(date_trunc('week', $1::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', $2::timestamptz, interval '7 days') w
         WHERE NOT EXISTS (SELECT 1 FROM readings_layout_copy c WHERE c.range_start = w)
         ORDER BY w`,
        [range.lo, range.hi],
      );
      weeks.push(...res.rows.map((r) => ({ from: r.f, to: r.t })));
    }
    const done = Number((await client.query(`SELECT count(*) AS n FROM readings_layout_copy`)).rows[0].n);
    log(`readings ${range.lo?.toISOString() ?? '-'} .. ${range.hi?.toISOString() ?? '-'}: ${done} week(s) copied before, ${weeks.length} to copy`);
    let rowsCopied = 0;
    const started = performance.now();
    for (const [i, w] of weeks.entries()) {
      const t0 = performance.now();
      const n = Number((await client.query(`SELECT readings_layout_copy_range($1, $2) AS n`, [w.from, w.to])).rows[0].n);
      rowsCopied += n;
      const s = (performance.now() - t0) / 1000;
      log(`week ${i + 1}/${weeks.length} from ${w.from.toISOString().slice(0, 10)}: ${n} readings in ${s.toFixed(1)} s (${Math.round(n / Math.max(s, 0.001))}/s)`);
    }
    const deltaRows = Number((await client.query(`SELECT readings_layout_copy_delta() AS n`)).rows[0].n);
    log(`${deltaRows} readings written since the first copy copied again; ${rowsCopied} in ${((performance.now() - started) / 1000).toFixed(0)} s in all`);
    let mismatchedMeters = 0;
    if (o.verify ?? true) {
      mismatchedMeters = Number((await client.query(`SELECT count(*) AS n FROM readings_layout_mismatches()`)).rows[0].n);
      log(mismatchedMeters === 0
        ? 'every meter\'s count and sums agree; upgrade now (migration 013 copies what is written meanwhile)'
        : `${mismatchedMeters} meter(s) differ (written or deleted since): run again, or upgrade (migration 013 copies them again and checks every meter)`);
    }
    return { alreadyMigrated: false, weeksCopied: weeks.length, weeksTotal: done + weeks.length, rowsCopied, deltaRows, mismatchedMeters };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [COPY_LOCK_ID]).catch(() => {});
    await client.end().catch(() => {});
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error('DATABASE_URL is required (the database of the running installation)');
    process.exit(1);
  }
  try {
    await copyReadingsAhead({ databaseUrl, log: (line) => console.log(line), verify: !process.argv.includes('--no-verify') });
  } catch (err) {
    console.error(`migrate-readings failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
