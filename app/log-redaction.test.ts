/**
 * Logs are JSON lines with request ids, and no secret or token ever reaches them: the whole stack runs at
 * LOG_LEVEL=trace into a captured stream while secrets travel every path they can take (provisioning
 * responses, token creation, bearer headers, MQTT CONNECT passwords right and wrong), then the captured
 * text is searched for each secret.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../test/support/database.js';
import { connectDevice, connectRefused, endClient, publishAcked } from '../test/support/mqtt.js';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { startStack, type Stack } from '../test/support/stack.js';

const ADMIN = 'logging-test-admin-token-0123456789';
let stack: Stack;
let db: Awaited<ReturnType<typeof createDatabase>>;
const lines: string[] = [];

beforeAll(async () => {
  db = await createDatabase('logging');
  const config = loadConfig({
    DATABASE_URL: db.url, MQTT_PORT: '0', MQTT_WS_PORT: '0', API_PORT: '0', MQTT_HOST: '127.0.0.1', API_HOST: '127.0.0.1',
    BILLING_ADMIN_TOKEN: ADMIN, LOG_LEVEL: 'trace', BILLING_CRON: 'off',
  });
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  stack = await startStack({ config, log: createLogger('trace', 'test', sink), components: { gateway: true, api: true } });
});
afterAll(async () => {
  await stack?.stop();
  await db?.drop();
});

async function api(path: string, body?: unknown, token = ADMIN, requestId?: string) {
  const res = await fetch(`http://127.0.0.1:${stack.ports.api}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

describe('logs', () => {
  it('are JSON with request ids, and carry no secret, token or password', async () => {
    const chosenSecret = 'a-person-chose-this-secret-42';
    expect((await api('/v1/accounts', { id: 'ACC-L', name: 'Log', timezone: 'UTC', billingDay: 1 })).status).toBe(201);
    const generated = await api('/v1/meters', { id: 'MTR-L1', accountId: 'ACC-L', timezone: 'UTC', intervalSeconds: 900 });
    expect(generated.status).toBe(201);
    const chosen = await api('/v1/meters', { id: 'MTR-L2', accountId: 'ACC-L', timezone: 'UTC', intervalSeconds: 900, mqttPassword: chosenSecret });
    expect(chosen.status).toBe(201);
    const reader = await api('/v1/tokens', { role: 'reader' });
    expect(reader.status).toBe(201);
    // the reader token used as a bearer token, with a request id of our choosing
    expect((await api('/v1/meters/MTR-L1', undefined, reader.body.token, 'req-logging-test-1')).status).toBe(200);
    // a wrong bearer token, and MQTT with right and wrong passwords
    expect((await api('/v1/meters/MTR-L1', undefined, 'wrong-token-that-must-not-be-logged')).status).toBe(401);
    const url = `mqtt://127.0.0.1:${stack.ports.mqtt}`;
    const client = await connectDevice(url, 'MTR-L1', generated.body.mqttPassword);
    await publishAcked(client, 'meters/MTR-L1/readings', JSON.stringify({ intervalStart: '2026-01-01T00:00:00Z', intervalSeconds: 900, importWh: 1 }));
    await endClient(client);
    await connectRefused(url, 'MTR-L2', 'wrong-mqtt-password-not-to-be-logged');
    await new Promise((r) => setTimeout(r, 200));

    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    const text = lines.join('\n');
    for (const secret of [ADMIN, generated.body.mqttPassword, chosenSecret, reader.body.token, 'wrong-token-that-must-not-be-logged', 'wrong-mqtt-password-not-to-be-logged']) {
      expect(text.includes(secret), `a log line contains ${secret.slice(0, 6)}…`).toBe(false);
    }
    // the request id we sent is on that request's log lines
    const ours = lines.map((l) => JSON.parse(l)).filter((l) => l.reqId === 'req-logging-test-1');
    expect(ours.length).toBeGreaterThanOrEqual(1);
    expect(ours.some((l) => l.req?.url === '/v1/meters/MTR-L1' || l.res?.statusCode === 200)).toBe(true);
  });
});
