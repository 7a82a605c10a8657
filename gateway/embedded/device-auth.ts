/**
 * Step 1 of ingestion: authenticate a device (CONNECT username = device id, password = its secret).
 * Secrets are stored as scrypt hashes and verified off the event loop. A successful verification is
 * cached (as the SHA-256 of the password that verified) so reconnect storms do not each pay for scrypt;
 * the cache is dropped for a device the moment the database announces a change to it (NOTIFY
 * device_changed, see migrations/001), and dropped whole whenever that announcement channel is down.
 */
import { timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import type { Pool } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import { sha256, verifySecret } from '../../common/secrets.js';
import type { Device, DeviceKind } from '../topics.js';
import { isDeviceIdText } from '../client-text.js';

interface CachedDevice {
  device: Device;
  secretHash: string;
  verifiedDigest: Buffer | null;
}

export type AuthResult = { ok: true; device: Device } | { ok: false; reason: 'unknown_device' | 'bad_secret' | 'unavailable' };

const MAX_CACHED = 1_000_000;

export class DeviceAuthenticator {
  private readonly cache = new Map<string, CachedDevice>();
  private listener: pg.Client | null = null;
  private listening = false;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  async authenticate(deviceId: string | undefined, password: Buffer | undefined): Promise<AuthResult> {
    if (!deviceId || !password || password.length === 0 || password.length > 1024) return { ok: false, reason: 'bad_secret' };
    // Text that cannot be a device id (a NUL byte, control characters) is no device: never a database error.
    if (!isDeviceIdText(deviceId)) return { ok: false, reason: 'unknown_device' };
    let entry = this.listening ? this.cache.get(deviceId) : undefined;
    if (!entry) {
      let res;
      try {
        res = await this.pool.query<{ kind: DeviceKind; secret_hash: string }>('SELECT kind, secret_hash FROM devices WHERE id = $1', [deviceId]);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'device lookup failed');
        return { ok: false, reason: 'unavailable' };
      }
      if (res.rowCount === 0) return { ok: false, reason: 'unknown_device' };
      entry = { device: { id: deviceId, kind: res.rows[0].kind }, secretHash: res.rows[0].secret_hash, verifiedDigest: null };
      if (this.listening) {
        if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(deviceId, entry);
      }
    }
    const digest = sha256(password);
    if (entry.verifiedDigest && timingSafeEqual(entry.verifiedDigest, digest)) return { ok: true, device: entry.device };
    if (!(await verifySecret(password, entry.secretHash))) return { ok: false, reason: 'bad_secret' };
    entry.verifiedDigest = digest;
    return { ok: true, device: entry.device };
  }

  invalidate(deviceId: string): void {
    this.cache.delete(deviceId);
  }

  /** Subscribes to device changes; re-subscribes by itself after the database comes back. */
  async start(connectionString: string): Promise<void> {
    const connect = async () => {
      if (this.closed) return;
      const client = new pg.Client({ connectionString });
      const lost = () => {
        if (this.listener !== client) return;
        this.listener = null;
        this.listening = false;
        this.cache.clear();
        client.end().catch(() => {});
        if (!this.closed) setTimeout(() => void connect().catch(() => {}), 1000).unref();
      };
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (msg) => {
        if (msg.channel === 'device_changed' && msg.payload) this.invalidate(msg.payload);
      });
      this.listener = client;
      try {
        await client.connect();
        await client.query('LISTEN device_changed');
        this.cache.clear();
        this.listening = true;
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'device change listener not connected; retrying');
        lost();
      }
    };
    await connect();
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.listening = false;
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => {});
  }
}
