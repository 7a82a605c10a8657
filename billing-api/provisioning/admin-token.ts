/**
 * The bootstrap admin token. With BILLING_ADMIN_TOKEN set, that token is the bootstrap admin (its keyed
 * digest is stored, token-digest.ts). Unset: on the first start a token is generated, stored
 * and returned so start-up can print it once; later starts find it and print nothing.
 *
 * Revocation is final: a revoked bootstrap token stays revoked across restarts while BILLING_ADMIN_TOKEN
 * keeps its value (start-up then reports it; set a new value to get a working bootstrap token). The
 * variable names the only bootstrap token: a new value revokes the previous one and keeps its row (under a
 * new id), so that value can never authenticate again, nor be configured back.
 * Safe when several processes start at once (one transaction under an advisory lock; only the process
 * that inserted a generated token prints it).
 */
import { inTransaction, type Pool } from '../../common/db.js';
import { generateApiToken, randomId } from '../../common/secrets.js';
import { rekeyLegacyTokenDigests, tokenDigester } from './token-digest.js';

export const BOOTSTRAP_TOKEN_ID = 'bootstrap-admin';

export interface AdminTokenResult {
  /** the generated token, for the one start-up line that shows it */
  generated: string | null;
  /** BILLING_ADMIN_TOKEN names a token that was revoked: it does not authenticate */
  revoked: boolean;
}

export async function ensureAdminToken(pool: Pool, configured: string | undefined): Promise<AdminTokenResult> {
  await rekeyLegacyTokenDigests(pool);
  const digest = await tokenDigester(pool);
  if (configured) {
    const hash = digest(configured);
    return inTransaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [BOOTSTRAP_TOKEN_ID]);
      const same = await client.query<{ id: string; revoked_at: Date | null }>('SELECT id, revoked_at FROM api_tokens WHERE token_hash = $1', [hash]);
      if (same.rowCount && same.rows[0].revoked_at === null) return { generated: null, revoked: false };
      // Another value was the bootstrap token: it is revoked and kept under a new id.
      await client.query(
        'UPDATE api_tokens SET id = $2, revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 AND token_hash <> $3',
        [BOOTSTRAP_TOKEN_ID, randomId(`${BOOTSTRAP_TOKEN_ID}-replaced`), hash],
      );
      if (same.rowCount) return { generated: null, revoked: true };
      await client.query(`INSERT INTO api_tokens (id, token_hash, role, hash_scheme) VALUES ($1, $2, 'admin', 'hmac-sha256')`, [BOOTSTRAP_TOKEN_ID, hash]);
      return { generated: null, revoked: false };
    });
  }
  const token = generateApiToken();
  const res = await pool.query(
    `INSERT INTO api_tokens (id, token_hash, role, hash_scheme) VALUES ($1, $2, 'admin', 'hmac-sha256') ON CONFLICT (id) DO NOTHING`,
    [BOOTSTRAP_TOKEN_ID, digest(token)],
  );
  return { generated: res.rowCount ? token : null, revoked: false };
}
