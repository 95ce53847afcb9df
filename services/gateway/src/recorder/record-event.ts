import type pg from 'pg';
import { toModelResult, type FalEndpointId, type FalEvent, type Logger } from '@aisha/shared';
import { recordTransition } from '../audit';
import { inTransaction } from '../db/database';
import type { JobEnqueuer } from '../enqueue-jobs';

type Entity = 'training' | 'generation';
const TABLE: Record<Entity, string> = { training: 'trainings', generation: 'generations' };
const OPEN: Record<Entity, string[]> = {
  training: ['queued', 'submitted', 'in_progress'],
  generation: ['queued', 'submitted'],
};

export interface RecorderDeps {
  pool: pg.Pool;
  jobs: JobEnqueuer;
  log: Logger;
  onTerminal?: (entity: Entity, outcome: string, row: Record<string, unknown>) => void;
  onDuplicate?: (entity: Entity) => void;
}

/**
 * Applies one event to PostgreSQL. Rows only move forward and a terminal row never changes (guarded UPDATEs);
 * completions are bound to rows by fal's signed request id, through the binding our own worker's `submitted`
 * made. The URL id of a webhook is never trusted. Safe under redelivery and any order of arrival.
 */
export async function recordEvent(event: FalEvent, deps: RecorderDeps): Promise<string> {
  if (event.type === 'submitted') return bindSubmission(event, deps);
  if (event.type === 'progress') return applyProgress(event, deps);
  return applyOutcome(event, deps);
}

async function bindSubmission(event: FalEvent, deps: RecorderDeps): Promise<string> {
  const { entity, id, falRequestId, endpoint } = event;
  if (!entity || !id || !falRequestId || !endpoint) return 'ignored: incomplete submitted event';
  const table = TABLE[entity];
  const { outcome, cancel } = await inTransaction(deps.pool, async (db) => {
    const { rows } = await db.query(
      `SELECT id, status, fal_request_id FROM ${table} WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const row = rows[0];
    if (!row) return { outcome: 'unknown row', cancel: false };
    if (row.fal_request_id === falRequestId) return { outcome: 'already bound', cancel: false };
    // A second request for the row, or a submit that reached fal after the row ended (cancelled or failed while
    // its job ran): nobody waits for it, so it is counted and cancelled at fal instead of being bound.
    const late = !OPEN[entity].includes(row.status);
    if (row.fal_request_id || late) {
      const first = await recordDuplicate(db, entity, id, falRequestId);
      return { outcome: late ? `duplicate: row already ${row.status}` : 'duplicate', cancel: first };
    }
    await db.query(
      `UPDATE ${table} SET fal_request_id = $2, fal_endpoint = $3, attempts = attempts + 1, updated_at = now(),
         status = CASE WHEN status = 'queued' THEN 'submitted' ELSE status END,
         submitted_at = COALESCE(submitted_at, $4)
       WHERE id = $1 AND status = ANY($5) AND fal_request_id IS NULL`,
      [id, falRequestId, endpoint, event.at, OPEN[entity]],
    );
    if (row.status === 'queued')
      await recordTransition(db, entity, id, 'queued', 'submitted', 'worker', falRequestId);
    return { outcome: 'bound', cancel: false };
  });
  if (cancel) await cancelDuplicate({ entity, id, falRequestId, endpoint }, deps);
  // Also on "already bound": a redelivered `submitted` after applyParked failed must still apply the parked result.
  if (outcome === 'bound' || outcome === 'already bound') await applyParked(falRequestId, deps);
  return outcome;
}

/** Notes a second fal request for a row; true the first time it is seen (so it is counted and cancelled once). */
export async function recordDuplicate(
  db: Pick<pg.Pool, 'query'>,
  entity: Entity,
  rowId: string,
  falRequestId: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    'INSERT INTO duplicate_requests (fal_request_id, entity, row_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
    [falRequestId, entity, rowId],
  );
  return rowCount === 1;
}

/** Counts a duplicate fal request and cancels it at fal; without a known endpoint it can only be counted. */
export async function cancelDuplicate(
  duplicate: { entity: Entity; id: string; falRequestId: string; endpoint: FalEndpointId | null | undefined },
  deps: RecorderDeps,
): Promise<void> {
  const { entity, id, falRequestId, endpoint } = duplicate;
  deps.onDuplicate?.(entity);
  deps.log.warn({ id, falRequestId }, 'duplicate fal request; cancelling it');
  if (!endpoint) return;
  await deps.jobs.cancel(
    { entity, id, falRequestId, endpoint, reason: 'duplicate' },
    deps.jobs.queueOf(entity, undefined, endpoint),
  );
}

async function applyProgress(event: FalEvent, deps: RecorderDeps): Promise<string> {
  const { falRequestId } = event;
  if (!falRequestId) return 'ignored';
  // The update and its transition commit together: a crash between them would lose the history row.
  return inTransaction(deps.pool, async (db) => {
    const { rows } = await db.query(
      `WITH old AS (
         SELECT id, status FROM trainings WHERE fal_request_id = $1 AND status IN ('submitted', 'in_progress') FOR UPDATE
       )
       UPDATE trainings t SET status = 'in_progress', progress = COALESCE($2, t.progress), updated_at = now()
       FROM old WHERE t.id = old.id
       RETURNING t.id, old.status AS was`,
      [falRequestId, event.progress?.percent ?? null],
    );
    const row = rows[0];
    if (!row) return 'ignored';
    if (row.was === 'submitted')
      await recordTransition(db, 'training', row.id, 'submitted', 'in_progress', event.source, falRequestId);
    return 'progress';
  });
}

async function applyOutcome(event: FalEvent, deps: RecorderDeps): Promise<string> {
  const target = await findRow(event, deps.pool);
  if (!target) {
    if (!event.falRequestId) return 'unknown row';
    // Before our worker's `submitted` bound this request: keep it, keyed by request id, until it is bound.
    await deps.pool.query(
      'INSERT INTO parked_events (fal_request_id, type, event) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [event.falRequestId, event.type, JSON.stringify(event)],
    );
    // The binding may have committed while we parked: look once more.
    if (await findRow(event, deps.pool)) await applyParked(event.falRequestId, deps);
    return 'parked';
  }
  return applyToRow(target.entity, target.id, event, deps);
}

async function applyToRow(entity: Entity, id: string, event: FalEvent, deps: RecorderDeps): Promise<string> {
  const table = TABLE[entity];
  const result = await inTransaction(deps.pool, async (db) => {
    const { rows } = await db.query(`SELECT * FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
    const row = rows[0];
    if (!row || !OPEN[entity].includes(row.status)) return { outcome: 'unchanged: already terminal', row };
    let status = event.type as string;
    let error = event.error?.message ?? (event.type === 'cancelled' ? 'cancelled by the client' : null);
    let result: unknown = null;
    if (event.type === 'completed') {
      try {
        result = toModelResult(row.fal_endpoint as FalEndpointId, event.output);
      } catch (err) {
        status = 'failed';
        error = `fal returned an output we could not read: ${(err as Error).message.slice(0, 300)}`;
      }
    }
    const images =
      result && (result as { kind: string }).kind === 'images'
        ? (result as { images: unknown[] }).images
        : null;
    const { rows: updated } = await db.query(
      entity === 'training'
        ? `UPDATE trainings SET status = $2, result = $3, error = $4, finished_at = now(), updated_at = now(),
             progress = CASE WHEN $2 = 'completed' THEN 100 ELSE progress END
           WHERE id = $1 AND status = ANY($5) RETURNING *`
        : `UPDATE generations SET status = $2, images = COALESCE($3, images), error = $4, finished_at = now(), updated_at = now()
           WHERE id = $1 AND status = ANY($5) RETURNING *`,
      [
        id,
        status,
        entity === 'training'
          ? result
            ? JSON.stringify(result)
            : null
          : images
            ? JSON.stringify(images)
            : null,
        error,
        OPEN[entity],
      ],
    );
    if (!updated[0]) return { outcome: 'unchanged', row };
    await recordTransition(db, entity, id, row.status, status, event.source, event.falRequestId);
    if (entity === 'training') await settleAvatar(db, row.avatar_id, status, result, error);
    return { outcome: status, row: updated[0] };
  });
  if (['completed', 'failed', 'cancelled'].includes(result.outcome) && result.row) {
    deps.onTerminal?.(entity, result.outcome, result.row);
  }
  deps.log.info(
    { entity, id, falRequestId: event.falRequestId, source: event.source },
    `recorder: ${result.outcome}`,
  );
  return result.outcome;
}

// A finished training decides its avatar: ready with the model, or failed / back to draft unless another of its
// trainings succeeded (then it stays ready with that model).
async function settleAvatar(
  db: pg.PoolClient,
  avatarId: string,
  status: string,
  model: unknown,
  error: string | null,
) {
  if (status === 'completed') {
    await db.query(
      "UPDATE avatars SET status = 'ready', model = $2, error = NULL, updated_at = now() WHERE id = $1",
      [avatarId, JSON.stringify(model)],
    );
    return;
  }
  await db.query(
    `UPDATE avatars SET updated_at = now(), error = $3,
       status = CASE WHEN EXISTS (SELECT 1 FROM trainings WHERE avatar_id = $1 AND status = 'completed') THEN 'ready' ELSE $2 END
     WHERE id = $1 AND status = 'training'`,
    [avatarId, status === 'cancelled' ? 'draft' : 'failed', status === 'cancelled' ? null : error],
  );
}

async function findRow(event: FalEvent, pool: pg.Pool): Promise<{ entity: Entity; id: string } | undefined> {
  if (event.falRequestId) {
    for (const entity of ['training', 'generation'] as const) {
      const { rows } = await pool.query(`SELECT id FROM ${TABLE[entity]} WHERE fal_request_id = $1`, [
        event.falRequestId,
      ]);
      if (rows[0]) return { entity, id: rows[0].id };
    }
    return undefined;
  }
  // No fal request id: only our own worker (a job that failed or was cancelled before reaching fal) or the sweep.
  if ((event.source === 'worker' || event.source === 'sweep') && event.entity && event.id) {
    return { entity: event.entity, id: event.id };
  }
  return undefined;
}

async function applyParked(falRequestId: string, deps: RecorderDeps): Promise<void> {
  const { rows } = await deps.pool.query<{ event: FalEvent }>(
    'DELETE FROM parked_events WHERE fal_request_id = $1 RETURNING event',
    [falRequestId],
  );
  for (const { event } of rows) await applyOutcome(event, deps);
}
