/**
 * `npm start` from anywhere: as root, from a clone in a folder only root can enter (mode 700, as a home
 * folder or a private temporary folder), the embedded PostgreSQL (which runs as the `postgres` user) still
 * starts and the product reaches /readyz, and again on a second start with the same cluster. A database that
 * cannot start ends the process with one clear line, never a stack trace.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../common/db.js';
import { spawnEntryPoint } from '../test/support/processes.js';

const repo = resolve(import.meta.dirname, '..');
const isRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.reverse().forEach((fn) => fn()));

interface Started {
  output: () => string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** `node --import tsx app/main.ts` in `cwd` with embedded defaults; resolves once it started or exited. */
async function startProduct(cwd: string, env: Record<string, string>): Promise<Started> {
  const { DATABASE_URL: _, BILLING_ADMIN_TOKEN: __, ...baseEnv } = process.env;
  const product = spawnEntryPoint('app/main.ts', { cwd, baseEnv, env: { LOG_LEVEL: 'warn', ...env } });
  await product.waitFor('started', 230_000).catch(() => {});
  return { output: product.output, exited: product.exited, stop: () => product.stop('SIGTERM', 60_000) };
}

async function ports() {
  return { MQTT_PORT: String(await freePort()), MQTT_WS_PORT: String(await freePort()), API_PORT: String(await freePort()) };
}

/** A copy of the working tree in a folder only root can enter; node_modules hard-linked (copied across file systems). */
function privateClone(): string {
  const folder = mkdtempSync(join(tmpdir(), 'smbg-private-'));
  chmodSync(folder, 0o700);
  cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
  const clone = join(folder, 'clone');
  const skip = new Set(['node_modules', '.git', 'data', 'dist', 'coverage']);
  mkdirSync(clone);
  cpSync(repo, clone, { recursive: true, filter: (src) => src === repo || !skip.has(src.slice(repo.length + 1).split('/')[0]!) });
  try {
    execFileSync('cp', ['-al', join(repo, 'node_modules'), join(clone, 'node_modules')]);
  } catch {
    rmSync(join(clone, 'node_modules'), { recursive: true, force: true });
    execFileSync('cp', ['-a', join(repo, 'node_modules'), join(clone, 'node_modules')]);
  }
  return clone;
}

describe.skipIf(!isRoot)('as root (skipped for other users: only root hands PostgreSQL to another user, who may not reach the folder)', () => {
  it('starts from a clone only root can enter, reaches /readyz, and starts again on the same cluster', { timeout: 240_000 }, async () => {
    const clone = privateClone();
    const env = await ports();
    const first = await startProduct(clone, env);
    cleanups.push(() => {
      const link = join(clone, 'data', 'pg');
      if (existsSync(link)) rmSync(realpathSync(link), { recursive: true, force: true });
    });
    expect(first.output()).toContain('started');
    expect(first.output()).not.toMatch(/EACCES|\n\s+at /);
    const ready = await fetch(`http://127.0.0.1:${env.API_PORT}/readyz`);
    expect(ready.status).toBe(200);
    const token = /Admin token\s+(\S+)/.exec(first.output())?.[1];
    expect(token).toMatch(/^smbg_/);
    expect(await first.stop()).toBe(0);

    const second = await startProduct(clone, env);
    expect(second.output()).toContain('started');
    expect(second.output()).not.toContain('Admin token'); // the same cluster: the token exists already
    const accounts = await fetch(`http://127.0.0.1:${env.API_PORT}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(accounts.status).toBe(200);
    expect(await second.stop()).toBe(0);
  });
});

describe('an embedded database that cannot start', () => {
  it('ends `npm start` with one line naming the cluster and the way out, exit code 1', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'smbg-broken-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    chmodSync(dataDir, 0o755);
    mkdirSync(join(dataDir, 'pg'));
    writeFileSync(join(dataDir, 'pg', 'PG_VERSION'), '9\n'); // a cluster of another major version
    const product = await startProduct(repo, { ...(await ports()), DATA_DIR: dataDir });
    expect(await product.exited).toBe(1);
    const lines = product.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`cannot start the embedded PostgreSQL under ${join(dataDir, 'pg')}`);
    expect(lines[0]).toContain('DATABASE_URL');
  });
});
