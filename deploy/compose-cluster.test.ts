/**
 * The compose `cluster` profile starts from a fresh checkout. No Docker engine runs here, so this tests what
 * can be tested: the mosquitto-auth service runs before Mosquitto inside the compose network (the database
 * port is not published), its command (taken from docker-compose.yml, container paths mapped to a temporary
 * folder) migrates a fresh database and writes the password and ACL files, and a real Mosquitto 2 started
 * with deploy/mosquitto/mosquitto.conf on those files lets a provisioned device and the gateway user in
 * and refuses a wrong secret.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createDatabase, storageModes } from '../test/support/database.js';
import { connectDevice, connectRefused, endClient } from '../test/support/mqtt.js';
import { startMosquitto, type Mosquitto } from '../test/support/mosquitto.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';

const repo = resolve(import.meta.dirname, '..');
const compose = parse(readFileSync(join(repo, 'docker-compose.yml'), 'utf8'), { merge: true });
const conf = readFileSync(join(repo, 'deploy/mosquitto/mosquitto.conf'), 'utf8');
const MOSQUITTO = process.env.TEST_MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const inCi = process.env.CI === 'true' || process.env.CI === '1';
const run = promisify(execFile);
const GATEWAY_PASSWORD = 'a-gateway-password-for-the-test';

describe('docker-compose.yml, cluster profile', () => {
  const auth = compose.services['mosquitto-auth'];
  const mosquitto = compose.services.mosquitto;

  it('writes Mosquitto\'s files in the compose network before Mosquitto starts, into a volume Mosquitto reads them from', () => {
    expect(auth.profiles).toEqual(['cluster']);
    expect(mosquitto.depends_on['mosquitto-auth']).toEqual({ condition: 'service_completed_successfully' });
    expect(auth.depends_on.timescaledb).toEqual({ condition: 'service_healthy' });
    expect(compose.services.timescaledb.ports).toBeUndefined(); // reachable only inside the compose network
    expect(auth.environment.DATABASE_URL).toMatch(/@timescaledb:5432\//);
    expect(Object.keys(compose.volumes)).toContain('mosquitto-auth');
    const authDir = (auth.volumes as string[]).find((v) => v.startsWith('mosquitto-auth:'))!.split(':')[1]!;
    const mounted = (mosquitto.volumes as string[]).find((v) => v.startsWith('mosquitto-auth:'))!.split(':')[1]!;
    expect(conf).toMatch(new RegExp(`^password_file ${mounted}/smbg\\.passwd$`, 'm'));
    expect(conf).toMatch(new RegExp(`^acl_file ${mounted}/smbg\\.acl$`, 'm'));
    expect(command()).toContain(`--password-file ${authDir}/smbg.passwd --acl-file ${authDir}/smbg.acl`);
    // The gateways log in with the password the files were written with.
    expect(auth.environment.MQTT_PASSWORD).toBe(compose.services['gateway-a'].environment.MQTT_PASSWORD);
  });
});

/** The shell command of the mosquitto-auth service. */
function command(): string {
  const cmd = compose.services['mosquitto-auth'].command as string[];
  expect(cmd.slice(0, 2)).toEqual(['sh', '-c']);
  return cmd[2]!;
}

const suite = existsSync(MOSQUITTO) || inCi ? describe : describe.skip;
suite(`the mosquitto-auth command against a fresh database, and Mosquitto on its files (${MOSQUITTO})`, () => {
  let dir: string;
  let db: { url: string; drop(): Promise<void> };
  let stack: TestStack | null = null;
  let broker: Mosquitto | null = null;
  const mode = storageModes()[0]!;
  const isRoot = process.getuid?.() === 0;

  beforeAll(async () => {
    if (!existsSync(MOSQUITTO)) throw new Error(`Mosquitto is required in CI but ${MOSQUITTO} does not exist (apt-get install mosquitto)`);
    dir = await mkdtemp(join(tmpdir(), 'smbg-compose-cluster-'));
    await chmod(dir, 0o755); // Mosquitto drops to its own user, who must enter the folder (as /mosquitto in the image)
    db = await createDatabase('cluster');
  });
  afterAll(async () => {
    await broker?.stop();
    await stack?.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the service's command as compose would, with /mosquitto/auth mapped to `<dir>/auth`. */
  async function runAuthService(owner: { uid: number; gid: number } | null) {
    let script = command().replaceAll('/mosquitto/auth', join(dir, 'auth'));
    // The files belong to Mosquitto's user: uid 1883 in the image, here the local mosquitto user.
    script = owner ? script.replaceAll('1883:1883', `${owner.uid}:${owner.gid}`) : script.replace(/chown [^&]*&&/, '');
    await mkdir(join(dir, 'auth'), { recursive: true });
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(compose.services['mosquitto-auth'].environment as Record<string, string>)) env[k] = String(v);
    Object.assign(env, { DATABASE_URL: db.url, READINGS_STORAGE: mode, MQTT_PASSWORD: GATEWAY_PASSWORD, LOG_LEVEL: 'warn' });
    const { BILLING_ADMIN_TOKEN: _, ...rest } = process.env;
    return run('sh', ['-c', script], { cwd: repo, env: { ...rest, ...env } });
  }

  it('migrates the fresh database, writes the files, and Mosquitto admits exactly the provisioned devices and the gateway', { timeout: 180_000 }, async () => {
    const owner = isRoot ? await mosquittoUser() : null;
    await runAuthService(owner);
    const passwd = join(dir, 'auth', 'smbg.passwd');
    expect(readFileSync(passwd, 'utf8')).toMatch(/^billing-gateway:\$7\$/m);
    if (owner) {
      expect(statSync(passwd).uid).toBe(owner.uid);
      expect(statSync(passwd).mode & 0o077).toBe(0);
    }

    // Devices provisioned later: the service runs again (`docker compose run --rm mosquitto-auth`).
    stack = await startTestStack(mode, {}, db.url);
    const { secrets } = await provisionFleet(stack, { meters: 2, prefix: 'CLU-' });
    await runAuthService(owner);
    expect(readFileSync(passwd, 'utf8')).toMatch(/^CLU-000001:\$7\$/m);

    const data = join(dir, 'data');
    await mkdir(data);
    if (owner) await chown(data, owner.uid, owner.gid);
    // deploy/mosquitto/mosquitto.conf itself, its container paths mapped to the temporary folder
    const localConf = (port: number) =>
      conf
        .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
        .replaceAll('/mosquitto/auth', join(dir, 'auth'))
        .replace(/^persistence_location .*$/m, `persistence_location ${data}/`);
    expect(localConf(1883)).not.toContain('/mosquitto/');
    broker = await startMosquitto({ dir, config: localConf });

    const url = broker.url;
    const device = await connectDevice(url, 'CLU-000001', secrets['CLU-000001']!);
    await endClient(device);
    const gateway = await connectDevice(url, 'billing-gateway', GATEWAY_PASSWORD, { clientId: 'gateway-a' });
    await endClient(gateway);
    const refused = await connectRefused(url, 'CLU-000002', 'not-its-secret');
    expect(refused.code).toBe(5);
  });
});

async function mosquittoUser(): Promise<{ uid: number; gid: number } | null> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', 'mosquitto']), run('id', ['-g', 'mosquitto'])]);
    return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
  } catch {
    return null;
  }
}
