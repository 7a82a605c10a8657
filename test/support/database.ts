/** A fresh, migrated database per test file (or per storage mode), dropped afterwards. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../../common/db.js';
import { createLogger } from '../../common/logger.js';
import { migrate, type StorageMode } from '../../common/migrate.js';

export type { StorageMode };

export function adminUrl(): string {
  const url = process.env.TEST_PG_ADMIN_URL;
  if (!url) throw new Error('TEST_PG_ADMIN_URL unset: run the tests through vitest (test/global-setup.ts)');
  return url;
}

/** The storage modes this run covers: both when TimescaleDB is available (always in CI). */
export function storageModes(): StorageMode[] {
  return (process.env.TEST_STORAGE_MODES ?? 'plain').split(',') as StorageMode[];
}

export function databaseUrl(name: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export async function createDatabase(prefix = 'test'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  return createDatabaseOnServer(adminUrl(), prefix);
}

/** A fresh, empty database on the server of `adminUrl` (a database URL the new one is created from); drop() removes it. */
export async function createDatabaseOnServer(serverAdminUrl: string, prefix: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `smbg_${prefix}_${randomBytes(5).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const url = new URL(serverAdminUrl);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: serverAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverAdminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function createTestDatabase(mode: StorageMode, prefix = 'test'): Promise<TestDatabase> {
  const db = await createDatabase(prefix);
  const { storageMode } = await migrate({ databaseUrl: db.url, storage: mode, log: createLogger('silent') });
  if (storageMode !== mode) throw new Error(`asked for ${mode} storage, got ${storageMode}`);
  const pool = createPool(db.url, 5);
  return {
    ...db,
    pool,
    drop: async () => {
      await pool.end().catch(() => {});
      await db.drop();
    },
  };
}
