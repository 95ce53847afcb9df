import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type pg from 'pg';
import { problem, type ProblemDetails } from '@aisha/shared';
import type { Caller } from '../api-keys';
import { inTransaction } from '../db/database';

export interface Answer {
  status: number;
  body: unknown;
}

/**
 * Stores the answer to a claimed key on the caller's transaction, so it commits with the row it describes;
 * `undefined` when the request carries no Idempotency-Key.
 */
export type SaveAnswer = ((db: pg.PoolClient, answer: Answer) => Promise<void>) | undefined;

const KEEP_MS = 24 * 3600_000;
const WAIT_FOR_FIRST_MS = 5_000;
/** A claim still unanswered after this belongs to a request that died (a crash, a lost connection): it is freed. */
export const STALE_CLAIM_MS = 60_000;

/**
 * Stripe's Idempotency-Key semantics: the first answer to a key is replayed for 24 h; the same key with another
 * body is a 422; a request arriving while the first is still being answered waits for it briefly, then gets 409.
 * The key row is claimed with INSERT … ON CONFLICT, so concurrent requests create one row and one job. `body` is
 * the parsed request: its hash ignores key order and whitespace.
 */
export async function idempotent(
  pool: pg.Pool,
  caller: Caller,
  req: Request,
  body: unknown,
  create: (saveAnswer: SaveAnswer) => Promise<Answer>,
): Promise<Answer> {
  const key = req.get('idempotency-key');
  if (key === undefined) return create(undefined);
  if (key.length < 1 || key.length > 255)
    return problemAnswer(problem(400, 'Idempotency-Key must be 1–255 characters'));
  const hash = createHash('sha256')
    .update(`${req.method} ${req.path} ${canonicalJson(body)}`)
    .digest('hex');

  await pool.query(
    `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2
       AND (created_at < now() - make_interval(secs => $3)
            OR (status_code IS NULL AND created_at < now() - make_interval(secs => $4)))`,
    [caller.tenantId, key, KEEP_MS / 1000, STALE_CLAIM_MS / 1000],
  );
  const claimed = await pool.query(
    'INSERT INTO idempotency_keys (tenant_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [caller.tenantId, key, hash],
  );
  if (claimed.rowCount === 1) {
    const saveAnswer: SaveAnswer = async (db, answer) => {
      await db.query(
        'UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE tenant_id = $1 AND key = $2',
        [caller.tenantId, key, answer.status, JSON.stringify(answer.body)],
      );
    };
    try {
      const answer = await create(saveAnswer);
      // Answers that wrote no row (404, 409, 422) are stored here; a created row's answer committed with it.
      await pool.query(
        `UPDATE idempotency_keys SET status_code = $3, response = $4
         WHERE tenant_id = $1 AND key = $2 AND status_code IS NULL`,
        [caller.tenantId, key, answer.status, JSON.stringify(answer.body)],
      );
      return answer;
    } catch (err) {
      // Nothing was committed: free the key so the client's retry is not refused. A claim whose row (and answer)
      // committed is kept, so the retry replays it instead of making a second row.
      await pool
        .query('DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2 AND status_code IS NULL', [
          caller.tenantId,
          key,
        ])
        .catch(() => undefined);
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
    if (!row) return idempotent(pool, caller, req, body, create); // the first request failed and freed the key
    if (row.request_hash !== hash) {
      return problemAnswer(problem(422, 'this Idempotency-Key was used with a different request body'));
    }
    if (row.status_code !== null) return { status: row.status_code, body: row.response };
    if (Date.now() > until)
      return problemAnswer(problem(409, 'a request with this Idempotency-Key is still in progress'));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs `insert` and, under an Idempotency-Key, stores its answer in the same transaction, so a retry replays it
 * instead of inserting twice. Without a key, `insert` runs on the pool alone (a single statement needs no BEGIN).
 */
export async function insertAnswered<R>(
  pool: pg.Pool,
  saveAnswer: SaveAnswer,
  insert: (db: pg.Pool | pg.PoolClient) => Promise<R>,
  answerOf: (row: R) => Answer,
): Promise<R> {
  if (!saveAnswer) return insert(pool);
  return inTransaction(pool, async (db) => {
    const row = await insert(db);
    await saveAnswer(db, answerOf(row));
    return row;
  });
}

/** Keys past their 24 h are never replayed; the sweep deletes them for every tenant. */
export async function purgeExpiredIdempotencyKeys(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(
    'DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)',
    [KEEP_MS / 1000],
  );
  return rowCount ?? 0;
}

// JSON with object keys sorted at every depth: two bodies that differ only in key order hash the same.
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function problemAnswer(body: ProblemDetails): Answer {
  return { status: body.status, body };
}
