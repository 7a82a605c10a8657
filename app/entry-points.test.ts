/**
 * What each entry point does with a bad configuration or a port already in use, as a real child process:
 * one clear line on stderr naming the variable, exit code 1, no stack trace.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../common/config.js';
import { createDatabase } from '../test/support/database.js';
import { runEntryPoint as runProcess, type Exit } from '../test/support/processes.js';

const CONFIG_KEYS = Object.keys(configSchema.shape);

/** Runs an entry point with the given configuration (and none inherited from this process). */
function runEntryPoint(entry: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Exit> {
  const baseEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !CONFIG_KEYS.includes(k) && k !== 'CI') baseEnv[k] = v;
  return runProcess(entry, { baseEnv, env: { LOG_LEVEL: 'warn', ...env }, timeoutMs });
}

/** The failure is one clear line on stderr, naming `variable`, with no stack trace. */
function expectOneLineError(exit: Exit, variable: string): string {
  expect(exit.code, `stdout: ${exit.stdout}\nstderr: ${exit.stderr}`).toBe(1);
  const lines = exit.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, exit.stderr).toHaveLength(1);
  expect(lines[0]).toContain(variable);
  expect(exit.stderr).not.toMatch(/^\s+at /m);
  expect(exit.stderr).not.toMatch(/Error:|node:internal|\.ts:\d+/);
  return lines[0];
}

function listenOn(port = 0): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    // Like Mosquitto on these machines: somebody else holds the port on every address.
    srv.listen(port, () => resolveServer(srv));
  });
}
const portOf = (srv: Server) => (srv.address() as { port: number }).port;

describe('entry points', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanups) await fn().catch(() => {});
  });

  it.each(['app/main.ts', 'app/gateway.main.ts', 'app/billing-api.main.ts'])('%s: a bad configuration is one line and exit code 1', async (entry) => {
    const exit = await runEntryPoint(entry, { MQTT_PORT: 'abc', API_PORT: '99999', LOG_LEVEL: 'noisy' });
    const line = expectOneLineError(exit, 'MQTT_PORT');
    // every bad variable in that one line
    expect(line).toContain('API_PORT');
    expect(line).toContain('LOG_LEVEL');
    expect(exit.stdout).toBe('');
  });

  it.each([
    { entry: 'app/main.ts', variable: 'MQTT_PORT' },
    { entry: 'app/gateway.main.ts', variable: 'MQTT_WS_PORT' },
    { entry: 'app/billing-api.main.ts', variable: 'API_PORT' },
  ])('$entry: a port already in use ($variable) is one line and exit code 1', async ({ entry, variable }) => {
    const blocker = await listenOn();
    cleanups.push(() => new Promise((r) => blocker.close(() => r())));
    const db = await createDatabase('entry');
    cleanups.push(db.drop);
    const port = String(portOf(blocker));
    const env: Record<string, string> = { DATABASE_URL: db.url, MQTT_PORT: '0', MQTT_WS_PORT: '0', API_PORT: '0', BILLING_ADMIN_TOKEN: 'entry-point-test-admin-token', [variable]: port };
    const exit = await runEntryPoint(entry, env);
    const line = expectOneLineError(exit, variable);
    expect(line).toContain(port);
    expect(line).toMatch(/in use/);
  });
});
