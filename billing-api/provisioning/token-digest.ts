/**
 * How API bearer tokens are stored: HMAC-SHA256(installation key, SHA-256(token)). The key is 32 random
 * bytes made by the first process that starts on a database (table api_token_key, migrations/010), so a
 * digest differs between installations and no table precomputed for SHA-256 applies; lookups stay one
 * indexed equality. Rows stored as a plain SHA-256 digest (hash_scheme 'sha256') are re-keyed in place:
 * HMAC of the stored digest, which needs no token.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Pool } from '../../common/db.js';
import { sha256 } from '../../common/secrets.js';

export type TokenDigest = (token: string) => Buffer;

const keys = new WeakMap<Pool, Promise<Buffer>>();

function keyOf(pool: Pool): Promise<Buffer> {
  let key = keys.get(pool);
  if (!key) {
    key = (async () => {
      await pool.query('INSERT INTO api_token_key (key) VALUES ($1) ON CONFLICT (id) DO NOTHING', [randomBytes(32)]);
      const res = await pool.query<{ key: Buffer }>('SELECT key FROM api_token_key');
      return res.rows[0].key;
    })();
    key.catch(() => keys.delete(pool));
    keys.set(pool, key);
  }
  return key;
}

const keyed = (key: Buffer, digest: Buffer) => createHmac('sha256', key).update(digest).digest();

/** The digest function of this database's tokens (the key is read, or made, once per pool). */
export async function tokenDigester(pool: Pool): Promise<TokenDigest> {
  const key = await keyOf(pool);
  return (token) => keyed(key, sha256(token));
}

/** Re-keys every token still stored as a plain SHA-256 digest; safe when several processes do it at once. */
export async function rekeyLegacyTokenDigests(pool: Pool): Promise<number> {
  const key = await keyOf(pool);
  const legacy = await pool.query<{ id: string; token_hash: Buffer }>(`SELECT id, token_hash FROM api_tokens WHERE hash_scheme = 'sha256'`);
  let n = 0;
  for (const row of legacy.rows) {
    const res = await pool.query(
      `UPDATE api_tokens SET token_hash = $2, hash_scheme = 'hmac-sha256' WHERE id = $1 AND hash_scheme = 'sha256' AND token_hash = $3`,
      [row.id, keyed(key, row.token_hash), row.token_hash],
    );
    n += res.rowCount ?? 0;
  }
  return n;
}
