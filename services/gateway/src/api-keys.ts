import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type pg from 'pg';
import { problem, sendProblem } from '@aisha/shared';

export interface Caller {
  tenantId: string;
  apiKeyId: string;
}

export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * `API_KEYS` is the list of valid keys: each listed tenant and key exists (stored hashed), and a key no longer
 * listed is revoked, so rotating a key is editing the variable and restarting.
 */
export async function seedApiKeys(
  pool: pg.Pool,
  keys: Array<{ tenant: string; key: string }>,
): Promise<void> {
  for (const { tenant, key } of keys) {
    await pool.query('INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING', [tenant]);
    await pool.query(
      `INSERT INTO api_keys (tenant_id, key_hash) VALUES ($1, $2)
       ON CONFLICT (key_hash) DO UPDATE SET revoked_at = NULL`,
      [tenant, hashKey(key)],
    );
  }
  await pool.query(
    'UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND NOT (key_hash = ANY($1::bytea[]))',
    [keys.map(({ key }) => hashKey(key))],
  );
}

/** `Authorization: Bearer <key>` → the calling tenant, or 401 problem+json. */
export function requireApiKey(pool: pg.Pool) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const key = /^Bearer (.+)$/i.exec(header)?.[1]?.trim();
    if (!key) return sendProblem(res, problem(401, 'missing API key: send Authorization: Bearer <key>'));
    const hash = hashKey(key);
    const { rows } = await pool.query<{ id: string; tenant_id: string; key_hash: Buffer }>(
      'SELECT id, tenant_id, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    const row = rows[0];
    // The lookup is by hash; the comparison is constant-time all the same.
    if (!row || !timingSafeEqual(row.key_hash, hash))
      return sendProblem(res, problem(401, 'unknown or revoked API key'));
    res.locals.caller = { tenantId: row.tenant_id, apiKeyId: String(row.id) } satisfies Caller;
    next();
  };
}

export function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}
