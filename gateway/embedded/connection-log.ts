/**
 * When each device last connected and disconnected (table device_connections, migration 021), for the
 * back office's silent-device lists. Events are kept per device in memory and written in one statement at
 * most once a second, so a reconnect storm costs one upsert a second, never one per connection; a failed
 * write is logged and retried with the next batch, and never delays a device.
 */
import type { Pool } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';

export interface ConnectionLog {
  connected(deviceId: string): void;
  disconnected(deviceId: string): void;
  /** Writes what is pending (at shutdown). */
  flush(): Promise<void>;
}

export function createConnectionLog(pool: Pool, log: Logger, delayMs = 1000): ConnectionLog {
  const pending = new Map<string, { connectedAt?: number; disconnectedAt?: number }>();
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();

  const write = async () => {
    timer = null;
    if (!pending.size) return;
    const batch = [...pending];
    pending.clear();
    try {
      await pool.query(
        `INSERT INTO device_connections AS c (device_id, connected_at, disconnected_at)
         SELECT u.id, u.c, u.d FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(id, c, d)
         WHERE EXISTS (SELECT 1 FROM devices WHERE id = u.id)
         ON CONFLICT (device_id) DO UPDATE
           SET connected_at = GREATEST(c.connected_at, excluded.connected_at),
               disconnected_at = GREATEST(c.disconnected_at, excluded.disconnected_at)`,
        [
          batch.map(([id]) => id),
          batch.map(([, e]) => (e.connectedAt === undefined ? null : new Date(e.connectedAt))),
          batch.map(([, e]) => (e.disconnectedAt === undefined ? null : new Date(e.disconnectedAt))),
        ],
      );
    } catch (err) {
      log.warn({ err: (err as Error).message, devices: batch.length }, 'device connection times not recorded; retried with the next batch');
      for (const [id, e] of batch) if (!pending.has(id)) pending.set(id, e);
    }
  };
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(() => {
      writing = writing.then(write);
    }, delayMs);
    timer.unref();
  };
  return {
    connected(deviceId) {
      pending.set(deviceId, { ...pending.get(deviceId), connectedAt: Date.now() });
      schedule();
    },
    disconnected(deviceId) {
      pending.set(deviceId, { ...pending.get(deviceId), disconnectedAt: Date.now() });
      schedule();
    },
    async flush() {
      if (timer) clearTimeout(timer);
      timer = null;
      writing = writing.then(write);
      await writing;
    },
  };
}
