/**
 * The bootstrap admin token. With BILLING_ADMIN_TOKEN set, that token is the bootstrap admin (its hash is
 * stored; changing the variable replaces it). Unset: on the first start a token is generated, stored
 * hashed and returned so start-up can print it once; later starts find it and print nothing.
 * Safe when two processes start at once: the row has a fixed id and only the inserting process prints.
 */
import type { Pool } from '../common/db.js';
import { generateApiToken, sha256 } from '../common/secrets.js';

export const BOOTSTRAP_TOKEN_ID = 'bootstrap-admin';

export async function ensureAdminToken(pool: Pool, configured: string | undefined): Promise<{ generated: string | null }> {
  if (configured) {
    await pool.query(
      `INSERT INTO api_tokens (id, token_hash, role) VALUES ($1, $2, 'admin')
       ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, revoked_at = NULL`,
      [BOOTSTRAP_TOKEN_ID, sha256(configured)],
    );
    return { generated: null };
  }
  const { token, digest } = generateApiToken();
  const res = await pool.query(
    `INSERT INTO api_tokens (id, token_hash, role) VALUES ($1, $2, 'admin') ON CONFLICT (id) DO NOTHING`,
    [BOOTSTRAP_TOKEN_ID, digest],
  );
  return { generated: res.rowCount ? token : null };
}
