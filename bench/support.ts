/**
 * What every benchmark scenario needs: a fresh database, component processes (test/support/, as the tests
 * start them), percentiles, the machine.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import pg from 'pg';
import { createLogger } from '../common/logger.js';
import { hashGeneratedSecret } from '../common/secrets.js';
import { migrate, readingsStorageMode, type StorageMode } from '../common/migrate.js';
import { createDatabaseOnServer } from '../test/support/database.js';
import { startEntryPoint } from '../test/support/processes.js';

export { stopProcess } from '../test/support/processes.js';

export interface BenchDatabase {
  url: string;
  storage: StorageMode;
  client: pg.Client;
  drop(): Promise<void>;
}

/** A fresh, migrated database on DATABASE_URL's server (default: PostgreSQL on 127.0.0.1:5432). */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const adminUrl = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  adminUrl.pathname = '/postgres';
  const db = await createDatabaseOnServer(adminUrl.toString(), 'bench');
  await migrate({ databaseUrl: db.url, storage: 'auto', log: createLogger('warn') });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const storage = await readingsStorageMode(client);
  return {
    url: db.url,
    storage,
    client,
    async drop() {
      await client.end().catch(() => {});
      await db.drop().catch(() => {});
    },
  };
}

/** Starts `entry` (e.g. app/gateway.main.ts) as its own process, stderr to ours; resolves when it printed `readyText`. */
export async function startProcess(entry: string, env: Record<string, string>, readyText = 'started', nodeArgs: string[] = []): Promise<ChildProcess> {
  const started = await startEntryPoint(entry, { env: { LOG_LEVEL: 'warn', ...env }, readyText, nodeArgs, stderr: 'inherit', timeoutMs: 600_000 });
  return started.child;
}

/** Resident memory of a process, MiB (Linux /proc). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kb / 1024) * 10) / 10;
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const round1 = (n: number) => Math.round(n * 10) / 10;

export function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverageAtStart: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
  };
}

/** The device secret of every benchmark device. */
export const BENCH_SECRET = 'bench-secret-0123456789';

/** Account BENCH with meters MTR-1..MTR-n (15-minute, UTC), all with BENCH_SECRET; SQL in bulk. */
export async function provisionBenchMeters(client: pg.Client, meters: number): Promise<string> {
  const hash = hashGeneratedSecret(BENCH_SECRET);
  await client.query(`INSERT INTO accounts VALUES ('BENCH', 'Bench', 'UTC', 1)`);
  await client.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'MTR-' || g, 'meter', $1 FROM generate_series(1, $2) g`, [hash, meters]);
  await client.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) SELECT 'MTR-' || g, 'BENCH', 'UTC', 900 FROM generate_series(1, $1) g`, [meters]);
  return hash;
}
