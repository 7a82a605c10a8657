/**
 * `npm run reorder-readings [-- --closed-for '1 day']`: rewrites the closed chunks of meter_readings that
 * are not yet in meter order (migrations/014), oldest first, one chunk per transaction, and prints each with
 * its time. For the Apache edition of TimescaleDB, which has no background jobs: run it daily (cron, or a
 * Kubernetes CronJob) against DATABASE_URL. The Timescale edition does the same with its reorder policy;
 * plain storage has no chunks (nothing to do; see migrations/README.md).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

export async function reorderReadings(o: { databaseUrl: string; closedFor?: string; log?: (line: string) => void }): Promise<string[]> {
  const log = o.log ?? (() => {});
  const client = new pg.Client({ connectionString: o.databaseUrl });
  await client.connect();
  const done: string[] = [];
  try {
    for (;;) {
      const t0 = performance.now();
      const chunk = (await client.query<{ c: string | null }>(`SELECT reorder_readings_chunk($1::interval) AS c`, [o.closedFor ?? '1 day'])).rows[0].c;
      if (!chunk) break;
      done.push(chunk);
      log(`${chunk} in meter order in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    log(done.length ? `${done.length} chunk(s) reordered` : 'no closed chunk left to reorder');
    return done;
  } finally {
    await client.end().catch(() => {});
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { 'closed-for': { type: 'string', default: '1 day' } } });
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error('DATABASE_URL is required');
    process.exit(1);
  }
  try {
    await reorderReadings({ databaseUrl, closedFor: values['closed-for'], log: (line) => console.log(line) });
  } catch (err) {
    console.error(`reorder-readings failed: ${(err as Error).message}`);
    process.exit(1);
  }
}
