/**
 * No Docker engine runs here, so test what can be tested of docker-compose.yml: it parses, the services
 * are there with health checks, and every service's environment passes the configuration schema.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from './config.js';

// Compose applies YAML merge keys (<<: *app-env), as the yaml library does with merge: true.
const compose = parse(readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8'), { merge: true });

describe('docker-compose.yml', () => {
  it('has TimescaleDB, the gateway and the billing API as separate services with health checks', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['billing-api', 'gateway', 'simulator', 'timescaledb']);
    for (const name of ['timescaledb', 'gateway', 'billing-api']) expect(compose.services[name].healthcheck, name).toBeDefined();
    expect(compose.services.timescaledb.image).toMatch(/^timescale\/timescaledb:/);
    expect(compose.services.gateway.command).toEqual(['npm', 'run', 'gateway']);
    expect(compose.services['billing-api'].command).toEqual(['npm', 'run', 'billing-api']);
    expect(compose.services.simulator.profiles).toEqual(['simulator']);
  });

  it.each(['gateway', 'billing-api'])('the %s environment passes the configuration schema', (name) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(compose.services[name].environment as Record<string, string>)) {
      env[k] = String(v).replace(/\$\{BILLING_ADMIN_TOKEN[^}]*\}/, 'a-compose-admin-token-of-32-chars');
    }
    const config = loadConfig(env);
    expect(config.DATABASE_URL).toMatch(/^postgres:\/\/.*@timescaledb:5432\//);
    expect(config.READINGS_STORAGE).toBe('timescaledb');
  });

  it('builds an image that runs as a non-root user', () => {
    const dockerfile = readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
  });
});
