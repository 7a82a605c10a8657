/**
 * No Docker engine runs here, so test what can be tested of docker-compose.yml: it parses, the services
 * are there with health checks, and every service's environment passes the configuration schema.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../common/config.js';
import { freePort } from '../common/db.js';
import { createDatabase } from '../test/support/database.js';
import { connectDevice, endClient, publishAcked } from '../test/support/mqtt.js';
import { spawnEntryPoint, type EntryPointProcess } from '../test/support/processes.js';

// Compose applies YAML merge keys (<<: *app-env), as the yaml library does with merge: true.
const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), { merge: true });

describe('docker-compose.yml', () => {
  it('has TimescaleDB, the gateway and the billing API as separate services with health checks', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['billing-api', 'gateway', 'gateway-a', 'gateway-b', 'mosquitto', 'mosquitto-auth', 'simulator', 'timescaledb']);
    for (const name of ['timescaledb', 'gateway', 'billing-api']) expect(compose.services[name].healthcheck, name).toBeDefined();
    expect(compose.services.timescaledb.image).toMatch(/^timescale\/timescaledb:/);
    expect(compose.services.gateway.command).toEqual(['npm', 'run', 'gateway']);
    expect(compose.services['billing-api'].command).toEqual(['npm', 'run', 'billing-api']);
    expect(compose.services.simulator.profiles).toEqual(['simulator']);
  });

  it.each(['gateway', 'billing-api', 'gateway-a', 'gateway-b'])('the %s environment passes the configuration schema', (name) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(compose.services[name].environment as Record<string, string>)) {
      env[k] = String(v)
        .replace(/\$\{BILLING_ADMIN_TOKEN[^}]*\}/, 'a-compose-admin-token-of-32-chars')
        .replace(/\$\{MQTT_GATEWAY_PASSWORD[^}]*\}/, 'a-gateway-password');
    }
    const config = loadConfig(env);
    expect(config.DATABASE_URL).toMatch(/^postgres:\/\/.*@timescaledb:5432\//);
    expect(config.READINGS_STORAGE).toBe('timescaledb');
    if (name.startsWith('gateway-')) {
      expect(config).toMatchObject({ MQTT_MODE: 'external', MQTT_URL: 'mqtt://mosquitto:1883', MQTT_CLIENT_ID: name, MQTT_SHARE_GROUP: 'billing-gateway' });
      expect(compose.services[name].profiles).toEqual(['cluster']);
    }
  });

  it('the cluster profile gives the two external-mode gateways distinct, stable client ids and Mosquitto a config that keeps queued messages', () => {
    expect(compose.services['gateway-a'].environment.MQTT_CLIENT_ID).not.toBe(compose.services['gateway-b'].environment.MQTT_CLIENT_ID);
    const conf = readFileSync(new URL('../deploy/mosquitto/mosquitto.conf', import.meta.url), 'utf8');
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(conf).toMatch(/^persistence true$/m);
    expect(conf).toMatch(/^max_queued_messages 1000000$/m);
    expect(compose.services.mosquitto.volumes).toContain('./deploy/mosquitto:/mosquitto/config:ro');
  });

  it('builds an image that runs as a non-root user', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
  });
});

describe('the compose entry points, started standalone as compose starts them', () => {
  it('`npm run billing-api` and `npm run gateway` as two processes share one database: provision, publish, read back', { timeout: 120_000 }, async () => {
    const db = await createDatabase('compose');
    const children: EntryPointProcess[] = [];
    // The services' own environment from docker-compose.yml; only what cannot hold here is replaced:
    // the database host (timescaledb -> this machine's server) and the ports (1883 is Mosquitto's here).
    const serviceEnv = (name: string, ports: Record<string, string>) => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(compose.services[name].environment as Record<string, string>)) env[k] = String(v);
      return { ...env, DATABASE_URL: db.url, BILLING_ADMIN_TOKEN: 'a-compose-admin-token-of-32-chars', LOG_LEVEL: 'warn', BILLING_CRON: 'off', ...ports };
    };
    const start = async (script: string, env: Record<string, string>, ready: string) => {
      const child = spawnEntryPoint(script, { npmScript: true, env });
      children.push(child);
      await child.waitFor(ready);
    };
    try {
      const apiPort = await freePort();
      const mqttPort = await freePort();
      await start('billing-api', serviceEnv('billing-api', { API_PORT: String(apiPort), API_HOST: '127.0.0.1' }), 'billing-api started');
      const opsPort = await freePort();
      expect(compose.services.gateway.environment.GATEWAY_HTTP_PORT).toBe('9464');
      expect(compose.services.gateway.healthcheck.test.join(' ')).toContain('9464/readyz');
      await start('gateway', serviceEnv('gateway', { MQTT_PORT: String(mqttPort), MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', GATEWAY_HTTP_PORT: String(opsPort) }), 'gateway started');
      const api = async (path: string, body?: unknown) => {
        const res = await fetch(`http://127.0.0.1:${apiPort}${path}`, {
          method: body === undefined ? 'GET' : 'POST',
          headers: { authorization: 'Bearer a-compose-admin-token-of-32-chars', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      expect((await api('/v1/accounts', { id: 'ACC-C', name: 'Compose', timezone: 'Europe/Paris', billingDay: 1 })).status).toBe(201);
      const meter = await api('/v1/meters', { id: 'MTR-C1', accountId: 'ACC-C', timezone: 'Europe/Paris', intervalSeconds: 900 });
      expect(meter.status).toBe(201);
      const client = await connectDevice(`mqtt://127.0.0.1:${mqttPort}`, 'MTR-C1', meter.body.mqttPassword);
      await publishAcked(client, 'meters/MTR-C1/readings', JSON.stringify({ intervalStart: '2026-03-01T00:00:00Z', intervalSeconds: 900, importWh: 125.5 }));
      await endClient(client);
      const readings = await api('/v1/meters/MTR-C1/readings?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z');
      expect(readings.status).toBe(200);
      expect(readings.body.items).toHaveLength(1);
      expect(readings.body.items[0]).toMatchObject({ intervalStart: '2026-03-01T00:00:00.000Z', importWh: '125.5' });
      expect((await fetch(`http://127.0.0.1:${apiPort}/readyz`)).status).toBe(200);
      // The gateway service answers its own health check and is scraped on GATEWAY_HTTP_PORT.
      const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { database: true, broker: true, ingestion: true } });
      const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      expect(metrics).toMatch(/^readings_ingested_total 1$/m);
      expect(metrics).toMatch(/^mqtt_connected_devices 0$/m);
    } finally {
      await Promise.all(children.map((child) => child.stop()));
      await db.drop();
    }
  });
});
