/**
 * What /readyz checks, on the API and on the gateway's own GATEWAY_HTTP_PORT alike: the database answers;
 * when this process runs a gateway, it listens (embedded) or is subscribed (external), and its commits reach
 * the database (commit health); on the API, the migrations are applied. Every check is one boolean; a new condition becomes one more entry here.
 */
import type { Pool } from '../common/db.js';
import { migrationsApplied } from '../common/migrate.js';
import type { WiredGateway } from './wire-gateway.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<boolean>;
}

export function readinessChecks(pool: Pool, gateway: WiredGateway | null, opts: { migrations?: boolean } = {}): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [{ name: 'database', check: async () => (await pool.query('SELECT 1')).rowCount === 1 }];
  if (gateway) {
    checks.push({ name: 'broker', check: async () => gateway.listening });
    checks.push({ name: 'ingestion', check: async () => gateway.commitHealth().healthy });
  }
  if (opts.migrations) checks.push({ name: 'migrations', check: () => migrationsApplied(pool) });
  return checks;
}
