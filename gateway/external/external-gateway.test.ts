/**
 * MQTT_MODE=external against a real Mosquitto 2 (the binary at /usr/sbin/mosquitto, on a free port):
 * devices provisioned through the API, the broker's password and ACL files written by the mosquitto-auth
 * command, two gateway processes of two subscriber connections each (four persistent sessions) sharing one
 * subscription group, one of them killed with SIGKILL mid-run and restarted with the same client id. Every
 * reading sent is stored exactly once.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOSQUITTO_ITERATIONS_CHOSEN, MOSQUITTO_ITERATIONS_GENERATED, mosquittoPasswordHash } from '../../common/secrets.js';
import { freePort } from '../../common/db.js';
import { storageModes } from '../../test/support/database.js';
import { MOSQUITTO_BIN, mosquittoInstalled, startMosquitto, type Mosquitto } from '../../test/support/mosquitto.js';
import { spawnEntryPoint, stopProcess } from '../../test/support/processes.js';
import { sleep, waitFor } from '../../test/support/wait.js';
import { connectDevice, connectRefused, endClient, publishAcked, reading, slot } from '../../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../../test/support/stack.js';

const MOSQUITTO = MOSQUITTO_BIN;
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const haveMosquitto = mosquittoInstalled();
// Locally a missing Mosquitto skips the suite; in CI it fails (beforeAll throws).
const suite = haveMosquitto || inCi ? describe : describe.skip;

const run = promisify(execFile);

/** A gateway process (app/gateway.main.ts) with its whole output kept, across its lives. */
interface GatewayProcess {
  name: string;
  child: ChildProcess;
  /** the JSON log lines of this life */
  lines: Record<string, any>[];
  output: string;
  exited: Promise<number | null>;
}

function startExternalGateway(name: string, env: Record<string, string>): Promise<GatewayProcess> {
  const { child } = spawnEntryPoint('app/gateway.main.ts', { env: { LOG_LEVEL: 'debug', ...env } });
  const gw: GatewayProcess = {
    name,
    child,
    lines: [],
    output: '',
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
  };
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    gw.output += d.toString();
    partial += d.toString();
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const line of complete) {
      if (!line.startsWith('{')) continue;
      try {
        gw.lines.push(JSON.parse(line));
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (gw.output += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s: ${gw.output}`)), 60_000);
    const onData = () => {
      if (gw.output.includes('gateway started')) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(gw);
      }
    };
    child.stdout!.on('data', onData);
    void gw.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before starting: ${gw.output}`));
    });
  });
}

/** What a gateway life committed, from its debug log ('message committed; acknowledging'). */
function commits(gw: GatewayProcess) {
  let messages = 0;
  let stored = 0;
  let duplicates = 0;
  /** messages per subscriber connection (client id) */
  const byClientId: Record<string, number> = {};
  for (const l of gw.lines) {
    if (l.msg !== 'message committed; acknowledging') continue;
    messages++;
    stored += l.stored + l.replaced;
    duplicates += l.duplicates;
    byClientId[l.clientId] = (byClientId[l.clientId] ?? 0) + 1;
  }
  return { messages, stored, duplicates, byClientId };
}

// One storage mode (the first: the hypertable when TimescaleDB is there): the path under test is the
// broker and the subscriber; storage is the same code as in embedded mode, covered in both modes elsewhere.
suite.each(storageModes().slice(0, 1))('MQTT_MODE=external with Mosquitto (%s storage)', (mode) => {
  let stack: TestStack;
  let dir: string;
  let mosquitto: Mosquitto | null = null;
  let mosquittoLog: string;
  let port: number;
  let url: string;
  let passwordFile: string;
  let aclFile: string;
  const gatewayUser = 'billing-gateway-svc';
  const gatewayPassword = `gw-${Math.random().toString(36).slice(2)}-secret`;
  let secrets: Record<string, string> = {};
  let meterIds: string[] = [];
  const gateways: GatewayProcess[] = [];
  const clients: MqttClient[] = [];
  const authRuns: { stdout: string; stderr: string }[] = [];

  const mosquittoAuth = (env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', 'gateway/external/mosquitto-auth.ts', '--password-file', passwordFile, '--acl-file', aclFile, '--gateway-user', gatewayUser], {
      env: { ...process.env, DATABASE_URL: stack.databaseUrl, MQTT_PASSWORD: gatewayPassword, ...env },
      timeout: 60_000,
    });

  /** two subscriber connections per instance: client ids <clientId> and <clientId>-2 */
  const gatewayEnv = (clientId: string, extra: Record<string, string> = {}) => ({
    DATABASE_URL: stack.databaseUrl,
    READINGS_STORAGE: mode,
    MQTT_MODE: 'external',
    MQTT_URL: url,
    MQTT_USERNAME: gatewayUser,
    MQTT_PASSWORD: gatewayPassword,
    MQTT_CLIENT_ID: clientId,
    MQTT_SHARE_GROUP: 'billing-gateway',
    MQTT_SUBSCRIBER_CONNECTIONS: '2',
    ...extra,
  });

  beforeAll(async () => {
    if (!haveMosquitto) throw new Error(`Mosquitto is required in CI but ${MOSQUITTO} does not exist (apt-get install mosquitto)`);
    dir = await mkdtemp(join(tmpdir(), 'smbg-mosquitto-'));
    passwordFile = join(dir, 'passwords');
    aclFile = join(dir, 'acl');
    mosquittoLog = join(dir, 'mosquitto.log');
    stack = await startTestStack(mode);

    // Provisioned through the API: six meters of their own, a concentrator with two meters behind it, and a
    // meter whose Mosquitto hash is missing (as for one provisioned before migration 007).
    ({ meterIds, secrets } = await provisionFleet(stack, { meters: 6 }));
    const behind = await provisionFleet(stack, { meters: 2, prefix: 'DCM-', concentratorId: 'DCU-1' });
    Object.assign(secrets, behind.secrets);
    await provisionFleet(stack, { meters: 1, prefix: 'OLD-' });
    await stack.pool.query(`UPDATE devices SET mosquitto_password_hash = NULL WHERE id = 'OLD-000001'`);

    const first = await mosquittoAuth();
    authRuns.push(first);
    // Rotating the secret gives the device a Mosquitto hash.
    const rotated = await stack.api('/v1/devices/OLD-000001/secret', { method: 'PUT', body: {} });
    expect(rotated.status).toBe(200);
    secrets['OLD-000001'] = rotated.body.mqttPassword;
    authRuns.push(await mosquittoAuth());

    // Sessions and their queued QoS 1 messages are kept (and saved to disk every 5 s); every connection
    // and notice is logged into mosquittoLog.
    mosquitto = await startMosquitto({ dir, auth: { passwordFile, aclFile }, autosaveSeconds: 5, logFile: mosquittoLog });
    port = mosquitto.port;
    url = mosquitto.url;
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await endClient(c).catch(() => {});
    for (const g of gateways) await stopProcess(g.child, 'SIGKILL');
    await mosquitto?.stop();
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('mosquitto-auth writes Mosquitto 2 hashes, lists devices it cannot export, and leaves out meters behind a concentrator', async () => {
    expect(authRuns[0].stderr).toContain('skipped meter OLD-000001: no Mosquitto hash');
    expect(authRuns[0].stderr).toContain('rotate its secret');
    expect(authRuns[0].stderr).toContain('2 meter(s) assigned to a concentrator');
    expect(authRuns[1].stderr).not.toContain('skipped');
    const passwords = await readFile(passwordFile, 'utf8');
    const users = passwords.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':')[0]);
    expect(users.sort()).toEqual([gatewayUser, 'DCU-1', 'OLD-000001', ...meterIds].sort());
    for (const line of passwords.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/^[^:]+:\$7\$\d+\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    }
    // Generated secrets, and the gateway's own (chosen) password, at their iteration counts.
    expect(passwords).toContain(`\nMTR-000001:$7$${MOSQUITTO_ITERATIONS_GENERATED}$`);
    expect(passwords).toContain(`\n${gatewayUser}:$7$${MOSQUITTO_ITERATIONS_CHOSEN}$`);
    const acl = await readFile(aclFile, 'utf8');
    expect(acl).toContain(`user ${gatewayUser}\ntopic read $share/billing-gateway/meters/+/readings\ntopic read $share/billing-gateway/concentrators/+/readings\n`);
    expect(acl).toContain('user MTR-000001\ntopic write meters/MTR-000001/readings\ntopic read meters/MTR-000001/#\n');
    expect(acl).toContain('user DCU-1\ntopic write concentrators/DCU-1/readings\ntopic read concentrators/DCU-1/#\n');

    // Changing a secret without a new Mosquitto hash drops the old hash (migration 007's trigger), so the
    // old secret does not stay valid at the broker after the next export.
    const before = (await stack.pool.query(`SELECT secret_hash FROM devices WHERE id = 'MTR-000005'`)).rows[0].secret_hash;
    await stack.pool.query(`UPDATE devices SET secret_hash = 'sha256$x$y' WHERE id = 'MTR-000005'`);
    expect((await stack.pool.query(`SELECT mosquitto_password_hash FROM devices WHERE id = 'MTR-000005'`)).rows[0].mosquitto_password_hash).toBeNull();
    await stack.pool.query(`UPDATE devices SET secret_hash = $1 WHERE id = 'MTR-000005'`, [before]);
  });

  it('Mosquitto authenticates devices with their secrets and confines them to their own topics', async () => {
    const device = await connectDevice(url, 'MTR-000001', secrets['MTR-000001'], { clientId: 'acl-m1', protocolVersion: 5 });
    clients.push(device);
    const concentrator = await connectDevice(url, 'DCU-1', secrets['DCU-1'], { clientId: 'acl-dcu' });
    clients.push(concentrator);
    // The rotated legacy device, exported by the second run.
    await endClient(await connectDevice(url, 'OLD-000001', secrets['OLD-000001'], { clientId: 'acl-old' }));

    const wrong = await connectRefused(url, 'MTR-000001', 'not-the-secret');
    expect([4, 5]).toContain(wrong.code);
    // No credentials of their own: meters behind a concentrator, and unknown users.
    expect([4, 5]).toContain((await connectRefused(url, 'DCM-000001', secrets['DCM-000001'])).code);
    expect([4, 5]).toContain((await connectRefused(url, 'nobody', 'whatever-secret')).code);

    // Publishing on another device's topic: refused (MQTT 5 PUBACK reason 0x87 "not authorized").
    const other = await publishAcked(device, 'meters/MTR-000002/readings', JSON.stringify(reading('2025-06-01T00:00:00Z', 1))).then(
      () => null,
      (err: Error & { code?: number }) => err,
    );
    expect(other?.code).toBe(135);
    // A concentrator may not publish on a meter topic either.
    const v5 = await connectDevice(url, 'DCU-1', secrets['DCU-1'], { clientId: 'acl-dcu-5', protocolVersion: 5 });
    clients.push(v5);
    const onMeterTopic = await publishAcked(v5, 'meters/DCU-1/readings', '{}').then(() => null, (err: Error & { code?: number }) => err);
    expect(onMeterTopic?.code).toBe(135);

    // Reading: a device receives only its own tree, whatever it subscribes to (Mosquitto checks `read` on
    // each message's topic at delivery).
    const received: string[] = [];
    device.on('message', (topic) => received.push(topic));
    await device.subscribeAsync('meters/+/readings', { qos: 1 });
    const m2 = await connectDevice(url, 'MTR-000002', secrets['MTR-000002'], { clientId: 'acl-m2' });
    clients.push(m2);
    await publishAcked(m2, 'meters/MTR-000002/readings', JSON.stringify(reading('2025-06-01T00:00:00Z', 1)));
    await publishAcked(device, 'meters/MTR-000001/readings', JSON.stringify(reading('2025-06-01T00:00:00Z', 1)));
    await waitFor('own message', () => received.length >= 1, 10_000);
    await sleep(300);
    expect(received).toEqual(['meters/MTR-000001/readings']);
    await device.unsubscribeAsync('meters/+/readings');
  });

  it('two gateway instances of two connections each share the stream; one is killed with SIGKILL and restarted with its client id; every reading is stored exactly once', async () => {
    const METERS = meterIds.length;
    const MESSAGES = 60;
    const PER_MESSAGE = 10;
    const BASE = '2026-01-05T00:00:00Z';
    const publishers = await Promise.all(meterIds.map((id) => connectDevice(url, id, secrets[id], { clientId: `pub-${id}`, reconnectPeriod: 200 })));
    clients.push(...publishers);
    const value = (m: number, x: number, j: number) => (m * 7 + x + j) / 4;
    let published = 0;
    /** messages [from, to) of every meter, three in flight per meter */
    const publish = (from: number, to: number) =>
      Promise.all(
        publishers.map(async (client, m) => {
          for (let x = from; x < to; x += 3) {
            await Promise.all(
              [x, x + 1, x + 2].filter((k) => k < to).map((k) => {
                const readings = Array.from({ length: PER_MESSAGE }, (_, j) => reading(slot(BASE, k * PER_MESSAGE + j), value(m, k, j)));
                return publishAcked(client, `meters/${meterIds[m]}/readings`, JSON.stringify({ readings })).then(() => published++);
              }),
            );
          }
        }),
      );
    const storedCount = async () =>
      (await stack.pool.query(`SELECT count(*)::int AS n FROM readings WHERE meter_id LIKE 'MTR-%' AND interval_start >= $1`, [BASE])).rows[0].n as number;

    const opsPort = await freePort();
    let a = await startExternalGateway('gw-a', gatewayEnv('gw-a', { GATEWAY_HTTP_PORT: String(opsPort) }));
    gateways.push(a);
    const b = await startExternalGateway('gw-b', gatewayEnv('gw-b'));
    gateways.push(b);
    expect(a.output).toContain(`MQTT (external)    subscribed to ${url} as gw-a, gw-a-2 (2 connections), group billing-gateway`);
    // Ready: both connections connected, subscriptions granted.
    const ready = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { broker: true } });

    // Phase 1: both instances, and both connections of each, receive work.
    await publish(0, 20);
    await waitFor('phase 1 stored', async () => (await storedCount()) === METERS * 20 * PER_MESSAGE, 90_000);
    const aBefore = commits(a);
    expect(aBefore.messages).toBeGreaterThan(0);
    expect(commits(b).messages).toBeGreaterThan(0);
    expect(Object.keys(aBefore.byClientId).sort()).toEqual(['gw-a', 'gw-a-2']);
    expect(Object.keys(commits(b).byClientId).sort()).toEqual(['gw-b', 'gw-b-2']);

    // Phase 2: commits held back by a lock on the readings table, so gw-a has messages in flight, some of
    // them in a commit its database session will finish after the process is gone; then SIGKILL.
    const locker = new pg.Client({ connectionString: stack.databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE readings IN ACCESS EXCLUSIVE MODE');
      await publish(20, 40);
      await sleep(1500);
      // Several messages in flight per connection (not one at a time): gw-a holds more readings than two
      // messages' worth, none of them acknowledged.
      const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      const pending = Number(/^ingest_pending_readings (\d+)/m.exec(metrics)?.[1]);
      expect(pending).toBeGreaterThan(2 * PER_MESSAGE);
      await stopProcess(a.child, 'SIGKILL');
    } finally {
      await locker.query('COMMIT').catch(() => {});
      await locker.end();
    }
    // Phase 3: while gw-a is down, gw-b stores its share; Mosquitto keeps queueing gw-a's share in gw-a's session.
    await publish(40, 50);
    await sleep(1000);
    const whileDown = await storedCount();

    // Restart with the same client id: the session's messages (unacknowledged and queued) arrive.
    a = await startExternalGateway('gw-a (restarted)', gatewayEnv('gw-a'));
    gateways.push(a);
    await publish(50, MESSAGES);
    expect(published).toBe(METERS * MESSAGES);
    const total = METERS * MESSAGES * PER_MESSAGE;
    await waitFor('every reading stored', async () => (await storedCount()) >= total, 120_000, 250);
    // gw-a's share of phases 2 and 3 had waited in its session.
    expect(whileDown).toBeLessThan(METERS * 50 * PER_MESSAGE);
    await sleep(500);

    const res = await stack.pool.query(
      `SELECT meter_id, count(*)::int AS n, sum(import_mwh)::text AS s FROM readings
       WHERE meter_id LIKE 'MTR-%' AND interval_start >= $1 GROUP BY meter_id ORDER BY meter_id`,
      [BASE],
    );
    const expected = meterIds.map((id, m) => {
      let sum = 0;
      for (let x = 0; x < MESSAGES; x++) for (let j = 0; j < PER_MESSAGE; j++) sum += Math.round(value(m, x, j) * 1000);
      return { meter_id: id, n: MESSAGES * PER_MESSAGE, s: String(sum) };
    });
    expect(res.rows).toEqual(expected);
    const quarantined = await stack.pool.query(`SELECT reason, count(*)::int AS n FROM quarantine WHERE interval_start >= $1 GROUP BY reason`, [BASE]);
    expect(quarantined.rows).toEqual([]);

    // Both instances did work, and the restarted one received its session's backlog.
    const lives = [aBefore, commits(b), commits(a)];
    const [firstLife, bLife, secondLife] = lives;
    expect(bLife.messages).toBeGreaterThan(0);
    expect(secondLife.messages).toBeGreaterThan(0);
    // What the logs say was newly stored never exceeds what was sent; with the redelivered duplicates it
    // covers everything (the killed life's last commit happened after it could log or acknowledge it).
    const killedLife = commits(gateways[0]);
    const storedLogged = killedLife.stored + bLife.stored + secondLife.stored;
    const duplicatesLogged = killedLife.duplicates + bLife.duplicates + secondLife.duplicates;
    expect(storedLogged).toBeLessThanOrEqual(total);
    expect(storedLogged + duplicatesLogged).toBeGreaterThanOrEqual(total);
    console.log(
      `[external] readings ${total}: gw-a before kill ${killedLife.messages} messages (${firstLife.messages} by phase 1), gw-b ${bLife.messages}, ` +
        `gw-a restarted ${secondLife.messages} (${secondLife.duplicates} duplicate readings redelivered); stored while gw-a was down: ${whileDown}`,
    );
    const log = await readFile(mosquittoLog, 'utf8');
    expect(log).not.toContain('Outgoing messages are being dropped');
  }, 300_000);

  it('quarantines what an unknown device or an invalid topic id sends, without dropping it', async () => {
    // A broker user that is not one of our devices (the broker's user list and our table disagree).
    const ghostSecret = 'ghost-device-secret-123';
    await appendFile(passwordFile, `GHOST-1:${await mosquittoPasswordHash(ghostSecret, MOSQUITTO_ITERATIONS_GENERATED)}\n`);
    await appendFile(aclFile, '\nuser GHOST-1\ntopic write meters/GHOST-1/readings\ntopic write meters/bad!id/readings\ntopic write concentrators/GHOST-1/readings\n');
    mosquitto!.child.kill('SIGHUP');
    const ghost = await waitFor(
      'the reloaded password file',
      () => connectDevice(url, 'GHOST-1', ghostSecret, { clientId: 'ghost' }).catch(() => null),
      15_000,
      300,
    );
    clients.push(ghost);
    await publishAcked(ghost, 'meters/GHOST-1/readings', JSON.stringify(reading('2025-07-01T00:00:00Z', 3)));
    await publishAcked(ghost, 'meters/GHOST-1/readings', 'not json');
    await publishAcked(ghost, 'meters/bad!id/readings', JSON.stringify(reading('2025-07-01T00:00:00Z', 3)));
    await publishAcked(ghost, 'concentrators/GHOST-1/readings', JSON.stringify({ readings: [reading('2025-07-01T00:00:00Z', 3, { meterId: 'MTR-000001' })] }));
    const rows = await waitFor(
      'four quarantine records',
      async () => {
        const r = await stack.pool.query(`SELECT device_id, topic, reason, detail FROM quarantine WHERE topic LIKE '%GHOST-1%' OR topic LIKE '%bad!id%' ORDER BY id`);
        return r.rowCount === 4 ? r.rows : null;
      },
      30_000,
      200,
    );
    expect(rows.map((r) => [r.device_id, r.reason]).sort()).toEqual(
      [
        ['GHOST-1', 'unknown_meter'],
        ['GHOST-1', 'invalid_json'],
        [null, 'schema'],
        ['GHOST-1', 'not_assigned'],
      ].sort(),
    );
    expect(rows.find((r) => r.reason === 'schema').detail).toContain('is not meters/{meterId}/readings');

    // QoS 0 carries no acknowledgement, but what arrives is stored the same way.
    const m3 = await connectDevice(url, 'MTR-000003', secrets['MTR-000003'], { clientId: 'qos0-m3' });
    clients.push(m3);
    await publishAcked(m3, 'meters/MTR-000003/readings', JSON.stringify(reading('2025-07-01T00:00:00Z', 4)), 0);
    await waitFor(
      'the QoS 0 reading',
      async () => (await stack.pool.query(`SELECT 1 FROM readings WHERE meter_id = 'MTR-000003' AND interval_start = '2025-07-01T00:00:00Z'`)).rowCount === 1,
      30_000,
      200,
    );
    // The gateways are still up.
    for (const g of gateways.slice(1)) expect(g.child.exitCode).toBeNull();
  }, 120_000);

  it('stops on SIGTERM: commits and acknowledges what is in flight, keeps the session, exits 0', async () => {
    for (const g of gateways.slice(1)) {
      const exited = g.exited;
      g.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(g.lines.some((l) => l.msg === 'MQTT client closed; session kept')).toBe(true);
    }
  }, 60_000);
});
