/**
 * TLS, over real sockets: with TLS_CERT_FILE/TLS_KEY_FILE set, MQTT over TLS on MQTT_TLS_PORT,
 * MQTT over secure WebSocket on MQTT_WS_PORT and the API over HTTPS, all with a certificate made by the
 * openssl CLI for this run; plain MQTT stays on MQTT_PORT. A missing or unusable file stops start-up with
 * one line naming the variable.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../common/config.js';
import { freePort } from '../common/db.js';
import { createLogger } from '../common/logger.js';
import { describeStack, startStack } from '../test/support/stack.js';
import { runEntryPoint } from '../test/support/processes.js';
import { storageModes } from '../test/support/database.js';
import { connectDevice, endClient, publishAcked, reading } from '../test/support/mqtt.js';
import { startTestStack, TEST_ADMIN_TOKEN, type TestStack } from '../test/support/stack.js';
import { readTlsFiles, TlsFileError } from '../common/tls.js';

const OPENSSL = process.env.OPENSSL ?? 'openssl';

/** A self-signed certificate for localhost and 127.0.0.1 (P-256: fast to make). */
async function makeCertificate(dir: string): Promise<{ certFile: string; keyFile: string; ca: Buffer }> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(OPENSSL, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { certFile, keyFile, ca: await readFile(certFile) };
}

/** JSON over HTTPS, trusting `ca` only. */
function httpsJson(url: string, ca: Buffer, init: { method?: string; body?: unknown; token?: string } = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    const req = request(
      url,
      {
        method: init.method ?? (body === undefined ? 'GET' : 'POST'),
        ca,
        headers: {
          authorization: `Bearer ${init.token ?? TEST_ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const mode = storageModes()[0];

describe(`TLS listeners (${mode} storage)`, () => {
  let dir: string;
  let cert: { certFile: string; keyFile: string; ca: Buffer };
  let stack: TestStack;
  let apiUrl: string;
  let secret: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gateway-tls-'));
    cert = await makeCertificate(dir);
    stack = await startTestStack(mode, {
      TLS_CERT_FILE: cert.certFile,
      TLS_KEY_FILE: cert.keyFile,
      MQTT_TLS_PORT: '0',
      MQTT_WS_PORT: String(await freePort()),
    });
    apiUrl = `https://localhost:${stack.ports.api}`;
    const acc = await httpsJson(`${apiUrl}/v1/accounts`, cert.ca, { body: { id: 'ACC-TLS', name: 'TLS', timezone: 'Europe/London', billingDay: 1 } });
    expect(acc.status).toBe(201);
    const meter = await httpsJson(`${apiUrl}/v1/meters`, cert.ca, { body: { id: 'MTR-TLS', accountId: 'ACC-TLS', timezone: 'Europe/London', intervalSeconds: 900 } });
    expect(meter.status).toBe(201);
    secret = meter.body.mqttPassword;
  });
  afterAll(async () => {
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const stored = async (intervalStart: string) =>
    (await stack.pool.query(`SELECT import_mwh::int AS mwh FROM readings WHERE meter_id = 'MTR-TLS' AND interval_start = $1`, [intervalStart])).rows;

  it('serves the API over HTTPS (TLS 1.2 or later) and not over plain HTTP', async () => {
    const health = await httpsJson(`${apiUrl}/healthz`, cert.ca);
    expect(health).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await httpsJson(`${apiUrl}/v1/accounts/ACC-TLS`, cert.ca)).status).toBe(200);
    await expect(fetch(`http://127.0.0.1:${stack.ports.api}/healthz`)).rejects.toThrow();
    // A client that trusts another CA refuses the connection.
    await expect(httpsJson(`${apiUrl}/healthz`, Buffer.from(''))).rejects.toThrow();
  });

  it('accepts a QoS 1 reading over mqtts:// and stores it before the PUBACK', async () => {
    const client = await connectDevice(`mqtts://localhost:${stack.ports.mqtts}`, 'MTR-TLS', secret, { ca: cert.ca, rejectUnauthorized: true, clientId: 'MTR-TLS:mqtts' });
    try {
      await publishAcked(client, 'meters/MTR-TLS/readings', JSON.stringify(reading('2026-03-01T00:00:00Z', 12.5)));
      expect(await stored('2026-03-01T00:00:00Z')).toEqual([{ mwh: 12500 }]);
    } finally {
      await endClient(client);
    }
  });

  it('accepts a QoS 1 reading over wss://', async () => {
    const client = await connectDevice(`wss://localhost:${stack.ports.ws}`, 'MTR-TLS', secret, { ca: cert.ca, rejectUnauthorized: true, clientId: 'MTR-TLS:wss' });
    try {
      await publishAcked(client, 'meters/MTR-TLS/readings', JSON.stringify(reading('2026-03-01T00:15:00Z', 7)));
      expect(await stored('2026-03-01T00:15:00Z')).toEqual([{ mwh: 7000 }]);
    } finally {
      await endClient(client);
    }
  });

  it('keeps plain MQTT on MQTT_PORT', async () => {
    const client = await connectDevice(stack.mqttUrl, 'MTR-TLS', secret, { clientId: 'MTR-TLS:plain' });
    try {
      await publishAcked(client, 'meters/MTR-TLS/readings', JSON.stringify(reading('2026-03-01T00:30:00Z', 1)));
      expect(await stored('2026-03-01T00:30:00Z')).toEqual([{ mwh: 1000 }]);
    } finally {
      await endClient(client);
    }
  });

  it('refuses plain MQTT on the TLS port, and protocol versions below TLS 1.2', async () => {
    await expect(connectDevice(`mqtt://127.0.0.1:${stack.ports.mqtts}`, 'MTR-TLS', secret, { clientId: 'MTR-TLS:wrong', connectTimeout: 3000 })).rejects.toThrow();
    // A client able to speak TLS 1.1 (security level 0) is refused by the server (protocol_version alert);
    // the same client allowed TLS 1.2 connects.
    const handshake = (maxVersion: 'TLSv1.1' | 'TLSv1.2') => {
      const socket = tlsConnect({ host: '127.0.0.1', port: stack.ports.mqtts!, ca: cert.ca, servername: 'localhost', minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT:@SECLEVEL=0' });
      return new Promise<string | null>((resolve, reject) => {
        socket.once('secureConnect', () => resolve(socket.getProtocol()));
        socket.once('error', reject);
      }).finally(() => socket.destroy());
    };
    await expect(handshake('TLSv1.1')).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    expect(await handshake('TLSv1.2')).toBe('TLSv1.2');
    // The frame guard is on the TLS path too: a packet far above the limit closes the connection.
    const client = await connectDevice(`mqtts://localhost:${stack.ports.mqtts}`, 'MTR-TLS', secret, { ca: cert.ca, clientId: 'MTR-TLS:big' });
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.publish('meters/MTR-TLS/readings', Buffer.alloc(256 * 1024 * 4 + 128 * 1024, 0x20), { qos: 1 });
    await closed;
    await endClient(client);
    const metrics = (await httpsJson(`${apiUrl}/metrics`, cert.ca)).body as string;
    expect(metrics).toMatch(/mqtt_refused_total\{reason="packet_too_large"\} [1-9]/);
  });

  it('prints mqtts://, wss:// and https:// in the start-up summary', () => {
    const config = loadConfig({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile, MQTT_HOST: '127.0.0.1', API_HOST: '127.0.0.1' });
    const lines = describeStack(stack, config).join('\n');
    expect(lines).toContain(`mqtt://127.0.0.1:${stack.ports.mqtt}`);
    expect(lines).toContain(`mqtts://127.0.0.1:${stack.ports.mqtts}`);
    expect(lines).toContain(`wss://127.0.0.1:${stack.ports.ws}`);
    expect(lines).toContain(`https://127.0.0.1:${stack.ports.api}/v1`);
    expect(lines).not.toMatch(/\bws:\/\/|http:\/\//);
  });
});

describe('TLS files at start-up', () => {
  let dir: string;
  let cert: { certFile: string; keyFile: string; ca: Buffer };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gateway-tls-files-'));
    cert = await makeCertificate(dir);
    await writeFile(join(dir, 'garbage.pem'), 'not a key\n');
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads nothing when TLS is off, both files when on', () => {
    expect(readTlsFiles({})).toBeNull();
    const material = readTlsFiles({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile });
    expect(material?.cert.toString()).toContain('BEGIN CERTIFICATE');
  });

  it('names the variable of an unreadable file, and refuses a key that is not one', () => {
    const missing = join(dir, 'missing.pem');
    expect(() => readTlsFiles({ TLS_CERT_FILE: missing, TLS_KEY_FILE: cert.keyFile })).toThrow(new TlsFileError(`TLS_CERT_FILE=${missing}: cannot read the file (ENOENT)`));
    expect(() => readTlsFiles({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: dir })).toThrow(/^TLS_KEY_FILE=.*: cannot read the file \(EISDIR\)$/);
    expect(() => readTlsFiles({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: join(dir, 'garbage.pem') })).toThrow(/not a usable PEM certificate and matching private key/);
  });

  it('stops start-up before anything starts', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', TLS_CERT_FILE: join(dir, 'missing.pem'), TLS_KEY_FILE: cert.keyFile, LOG_LEVEL: 'silent' });
    await expect(startStack({ config, log: createLogger('silent'), components: { gateway: true, api: true } })).rejects.toBeInstanceOf(TlsFileError);
  });

  it('is one line on stderr and exit code 1 from the process', async () => {
    const missing = join(dir, 'missing.pem');
    const { TLS_CERT_FILE: _, TLS_KEY_FILE: __, ...env } = process.env;
    const { code, stderr } = await runEntryPoint('app/gateway.main.ts', {
      baseEnv: env,
      env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', TLS_CERT_FILE: missing, TLS_KEY_FILE: cert.keyFile, LOG_LEVEL: 'silent' },
    });
    expect(code).toBe(1);
    expect(stderr).toBe(`gateway: TLS_CERT_FILE=${missing}: cannot read the file (ENOENT)\n`);
  }, 30_000);
});
