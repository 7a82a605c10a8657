/**
 * Configuration (contract section 1): defaults, one ConfigError listing every bad variable, empty strings
 * as unset, flags. What the entry points do with a bad configuration: app/entry-points.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, timescaleRequired } from './config.js';

/** Runs loadConfig and returns the ConfigError it throws (fails the test when it does not throw one). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

/** The variable each problem is about (problems read `NAME="value": message`). */
const badVariables = (err: ConfigError) => err.problems.map((p) => p.split('=')[0]).sort();

describe('loadConfig', () => {
  it('applies the defaults of contract section 1 to an empty environment', () => {
    const config = loadConfig({});
    expect(config.MQTT_PORT).toBe(1883);
    expect(config.MQTT_WS_PORT).toBe(8083);
    expect(config.API_PORT).toBe(3000);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.BILLING_ADMIN_TOKEN).toBeUndefined();
    expect(config.REQUIRE_TIMESCALEDB).toBe(false);
    expect(config.READINGS_STORAGE).toBe('auto');
    expect(config.MAX_PAYLOAD_BYTES).toBe(256 * 1024);
    expect(config.DEVICE_SECRET_SCRYPT_N).toBe(16384);
  });

  it('reads valid values as typed values', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://u:p@db.example:5433/billing',
      MQTT_PORT: '11883',
      MQTT_WS_PORT: '0',
      API_PORT: '8080',
      LOG_LEVEL: 'debug',
      BILLING_ADMIN_TOKEN: 'a-long-enough-admin-token',
    });
    expect(config).toMatchObject({
      DATABASE_URL: 'postgresql://u:p@db.example:5433/billing',
      MQTT_PORT: 11883,
      MQTT_WS_PORT: 0,
      API_PORT: 8080,
      LOG_LEVEL: 'debug',
      BILLING_ADMIN_TOKEN: 'a-long-enough-admin-token',
    });
  });

  it('treats empty strings as unset (defaults apply, optional values stay undefined)', () => {
    const config = loadConfig({ DATABASE_URL: '', MQTT_PORT: '', API_PORT: '', LOG_LEVEL: '', BILLING_ADMIN_TOKEN: '', REQUIRE_TIMESCALEDB: '' });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.BILLING_ADMIN_TOKEN).toBeUndefined();
    expect(config.MQTT_PORT).toBe(1883);
    expect(config.API_PORT).toBe(3000);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.REQUIRE_TIMESCALEDB).toBe(false);
  });

  it('ignores variables it does not know', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', SOMETHING_ELSE: 'x', HOME: '' })).not.toThrow();
  });

  it.each([
    ['MQTT_PORT', 'abc'],
    ['MQTT_PORT', '65536'],
    ['MQTT_WS_PORT', '-1'],
    ['API_PORT', '80.5'],
    ['LOG_LEVEL', 'loud'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['BILLING_ADMIN_TOKEN', 'short'],
    ['READINGS_STORAGE', 'cassandra'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    const err = configError({ [name]: value });
    expect(badVariables(err)).toEqual([name]);
    expect(err.message).toContain(name);
  });

  it('lists every bad variable in ONE ConfigError, each once', () => {
    const err = configError({
      MQTT_PORT: 'abc',
      MQTT_WS_PORT: '70000',
      API_PORT: '-3',
      LOG_LEVEL: 'chatty',
      DATABASE_URL: 'http://not-postgres',
      DEVICE_SECRET_SCRYPT_N: '1000',
      REQUIRE_TIMESCALEDB: 'maybe',
      // valid ones must not be listed
      BILLING_ADMIN_TOKEN: 'a-long-enough-admin-token',
    });
    const expected = ['API_PORT', 'DATABASE_URL', 'DEVICE_SECRET_SCRYPT_N', 'LOG_LEVEL', 'MQTT_PORT', 'MQTT_WS_PORT', 'REQUIRE_TIMESCALEDB'];
    expect(badVariables(err)).toEqual(expected);
    for (const name of expected) expect(err.message).toContain(name);
    expect(err.message).not.toContain('BILLING_ADMIN_TOKEN');
    // The message shows the offending values, so the operator sees what was read.
    expect(err.message).toContain('"abc"');
    expect(err.message).toContain('"70000"');
  });

  it('says what a non-numeric port must be instead of a type error', () => {
    const err = configError({ MQTT_PORT: 'abc' });
    expect(err.problems[0]).toMatch(/^MQTT_PORT="abc": must be/);
  });

  it.each([
    ['1', true],
    ['true', true],
    ['yes', true],
    ['0', false],
    ['false', false],
    ['no', false],
  ])('parses REQUIRE_TIMESCALEDB=%s as %s', (value, expected) => {
    const config = loadConfig({ REQUIRE_TIMESCALEDB: value });
    expect(config.REQUIRE_TIMESCALEDB).toBe(expected);
    expect(timescaleRequired(config)).toBe(expected);
  });

  it('refuses a REQUIRE_TIMESCALEDB value that is not a flag', () => {
    for (const value of ['2', 'maybe', 'on']) expect(badVariables(configError({ REQUIRE_TIMESCALEDB: value }))).toEqual(['REQUIRE_TIMESCALEDB']);
  });

  it('requires TimescaleDB with READINGS_STORAGE=timescaledb as with REQUIRE_TIMESCALEDB', () => {
    expect(timescaleRequired(loadConfig({ READINGS_STORAGE: 'timescaledb' }))).toBe(true);
    expect(timescaleRequired(loadConfig({ READINGS_STORAGE: 'plain' }))).toBe(false);
    expect(timescaleRequired(loadConfig({ READINGS_STORAGE: 'auto' }))).toBe(false);
  });

  it('accepts DEVICE_SECRET_SCRYPT_N only as a power of two (>= 1024)', () => {
    for (const n of [1024, 2048, 16384, 131072]) expect(loadConfig({ DEVICE_SECRET_SCRYPT_N: String(n) }).DEVICE_SECRET_SCRYPT_N).toBe(n);
    for (const bad of ['1000', '3000', '16383', '16385', '24576', '0', '-16384', '512', 'many']) {
      expect(badVariables(configError({ DEVICE_SECRET_SCRYPT_N: bad })), bad).toEqual(['DEVICE_SECRET_SCRYPT_N']);
    }
  });

  it('reads every variable of contract section 1', () => {
    const keys = Object.keys(configSchema.shape);
    for (const name of ['DATABASE_URL', 'MQTT_PORT', 'MQTT_WS_PORT', 'API_PORT', 'BILLING_ADMIN_TOKEN', 'LOG_LEVEL']) expect(keys).toContain(name);
  });
});
