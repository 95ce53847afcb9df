import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { LRUCache } from 'lru-cache';
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
 * listed is revoked, so rotating a key is editing the variable and restarting. A key listed under another tenant
 * moves to it: it authenticates as the tenant API_KEYS names now, never the one it was first seeded for.
 */
export async function seedApiKeys(
  pool: pg.Pool,
  keys: Array<{ tenant: string; key: string }>,
): Promise<void> {
  for (const { tenant, key } of keys) {
    await pool.query('INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING', [tenant]);
    await pool.query(
      `INSERT INTO api_keys (tenant_id, key_hash) VALUES ($1, $2)
       ON CONFLICT (key_hash) DO UPDATE SET revoked_at = NULL, tenant_id = EXCLUDED.tenant_id`,
      [tenant, hashKey(key)],
    );
  }
  await pool.query(
    'UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND NOT (key_hash = ANY($1::bytea[]))',
    [keys.map(({ key }) => hashKey(key))],
  );
}

/**
 * `Authorization: Bearer <key>` → the calling tenant, or 401 problem+json. Known keys are remembered for
 * `cacheTtlMs`, saving a PostgreSQL round trip per request: keys are revoked only when a gateway starts with a new
 * API_KEYS, so another replica accepts a revoked key for at most that long. Unknown keys are never remembered.
 * `isKnown` tells, without a lookup, whether a request's key is one of those remembered (the failed-auth limiter
 * lets such requests through untouched).
 */
export function apiKeyAuth(pool: pg.Pool, cacheTtlMs = 60_000) {
  const known = new LRUCache<string, Caller>({ max: 10_000, ttl: cacheTtlMs });
  const bearerKey = (req: Request) => /^Bearer (.+)$/i.exec(req.get('authorization') ?? '')?.[1]?.trim();

  async function requireApiKey(req: Request, res: Response, next: NextFunction) {
    const key = bearerKey(req);
    if (!key) return sendProblem(res, problem(401, 'missing API key: send Authorization: Bearer <key>'));
    const hash = hashKey(key);
    const cached = known.get(hash.toString('hex'));
    if (cached) {
      res.locals.caller = cached;
      return next();
    }
    const { rows } = await pool.query<{ id: string; tenant_id: string; key_hash: Buffer }>(
      'SELECT id, tenant_id, key_hash FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [hash],
    );
    const row = rows[0];
    // The lookup is by hash; the comparison is constant-time all the same.
    if (!row || !timingSafeEqual(row.key_hash, hash))
      return sendProblem(res, problem(401, 'unknown or revoked API key'));
    const caller = { tenantId: row.tenant_id, apiKeyId: String(row.id) } satisfies Caller;
    known.set(hash.toString('hex'), caller);
    res.locals.caller = caller;
    next();
  }

  function isKnown(req: Request): boolean {
    const key = bearerKey(req);
    return key !== undefined && known.has(hashKey(key).toString('hex'));
  }

  return { requireApiKey, isKnown };
}

export function callerOf(res: Response): Caller {
  return res.locals.caller as Caller;
}
