import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type pg from 'pg';
import { problem, type ProblemDetails } from '@aisha/shared';
import type { Caller } from '../api-keys';

export interface Answer {
  status: number;
  body: unknown;
}

const KEEP_MS = 24 * 3600_000;
const WAIT_FOR_FIRST_MS = 5_000;

/**
 * Stripe's Idempotency-Key semantics: the first answer to a key is replayed for 24 h; the same key with another
 * body is a 422; a request arriving while the first is still being answered waits for it briefly, then gets 409.
 * The key row is claimed with INSERT … ON CONFLICT, so concurrent requests create one row and one job.
 */
export async function idempotent(
  pool: pg.Pool,
  caller: Caller,
  req: Request,
  create: () => Promise<Answer>,
): Promise<Answer> {
  const key = req.get('idempotency-key');
  if (key === undefined) return create();
  if (key.length < 1 || key.length > 255)
    return problemAnswer(problem(400, 'Idempotency-Key must be 1–255 characters'));
  const hash = createHash('sha256')
    .update(`${req.method} ${req.path} ${JSON.stringify(req.body ?? null)}`)
    .digest('hex');

  await pool.query(
    `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND created_at < now() - ($3 || ' milliseconds')::interval`,
    [caller.tenantId, key, KEEP_MS],
  );
  const claimed = await pool.query(
    'INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [caller.tenantId, key, hash],
  );
  if (claimed.rowCount === 1) {
    try {
      const answer = await create();
      await pool.query(
        'UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE tenant_id = $1 AND key = $2',
        [caller.tenantId, key, answer.status, JSON.stringify(answer.body)],
      );
      return answer;
    } catch (err) {
      // Nothing was answered: free the key so the client's retry is not refused.
      await pool.query('DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2', [
        caller.tenantId,
        key,
      ]);
      throw err;
    }
  }

  const until = Date.now() + WAIT_FOR_FIRST_MS;
  for (;;) {
    const { rows } = await pool.query<{
      request_hash: string;
      status_code: number | null;
      response: unknown;
    }>('SELECT request_hash, status_code, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2', [
      caller.tenantId,
      key,
    ]);
    const row = rows[0];
    if (!row) return idempotent(pool, caller, req, create); // the first request failed and freed the key
    if (row.request_hash !== hash) {
      return problemAnswer(problem(422, 'this Idempotency-Key was used with a different request body'));
    }
    if (row.status_code !== null) return { status: row.status_code, body: row.response };
    if (Date.now() > until)
      return problemAnswer(problem(409, 'a request with this Idempotency-Key is still in progress'));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function problemAnswer(body: ProblemDetails): Answer {
  return { status: body.status, body };
}
