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
  // One statement: lock the row, bind it when it is open and unbound, and record its move to `submitted`.
  const { rows } = await deps.pool.query<{ status: string; fal_request_id: string | null; bound: boolean }>(
    `WITH old AS (
       SELECT id, status, fal_request_id FROM ${table} WHERE id = $1 FOR UPDATE
     ), bound AS (
       UPDATE ${table} t SET fal_request_id = $2, fal_endpoint = $3, attempts = t.attempts + 1, updated_at = now(),
         status = CASE WHEN old.status = 'queued' THEN 'submitted' ELSE old.status END,
         submitted_at = COALESCE(t.submitted_at, $4)
       FROM old WHERE t.id = old.id AND old.status = ANY($5) AND old.fal_request_id IS NULL
       RETURNING t.id
     ), history AS (
       INSERT INTO transitions (entity, row_id, from_status, to_status, source, fal_request_id)
       SELECT $6, old.id, 'queued', 'submitted', 'worker', $2 FROM old JOIN bound USING (id) WHERE old.status = 'queued'
     )
     SELECT old.status, old.fal_request_id, EXISTS (SELECT 1 FROM bound) AS bound FROM old`,
    [id, falRequestId, endpoint, event.at, OPEN[entity], entity],
  );
  const row = rows[0];
  let outcome: string;
  let cancel = false;
  if (!row) outcome = 'unknown row';
  else if (row.bound) outcome = 'bound';
  else if (row.fal_request_id === falRequestId) outcome = 'already bound';
  else {
    // A second request for the row, or a submit that reached fal after the row ended (cancelled or failed while
    // its job ran): nobody waits for it, so it is counted and cancelled at fal instead of being bound.
    cancel = await recordDuplicate(deps.pool, entity, id, falRequestId);
    outcome = OPEN[entity].includes(row.status) ? 'duplicate' : `duplicate: row already ${row.status}`;
  }
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
  return applyToRow(target, event, deps);
}

async function applyToRow(target: FoundRow, event: FalEvent, deps: RecorderDeps): Promise<string> {
  const { entity, id } = target;
  const { status, error, result } = readOutcome(event, target.endpoint);
  const images = result?.kind === 'images' ? result.images : null;
  const stored = entity === 'training' ? result : images;
  // The guarded move and its history row in one statement; a training also settles its avatar, in the same
  // transaction. A generation needs no more: one round trip.
  const move = (db: pg.Pool | pg.PoolClient) =>
    db.query(
      `WITH old AS (
         SELECT id, status FROM ${TABLE[entity]} WHERE id = $1 FOR UPDATE
       ), moved AS (
         UPDATE ${TABLE[entity]} r SET status = $2, ${entity === 'training' ? 'result = $3' : 'images = COALESCE($3, r.images)'},
           error = $4, finished_at = now(), updated_at = now()
           ${entity === 'training' ? ", progress = CASE WHEN $2 = 'completed' THEN 100 ELSE r.progress END" : ''}
         FROM old WHERE r.id = old.id AND old.status = ANY($5)
         RETURNING r.*, old.status AS was
       ), history AS (
         INSERT INTO transitions (entity, row_id, from_status, to_status, source, fal_request_id)
         SELECT $6, id, was, status, $7, $8 FROM moved
       )
       SELECT * FROM moved`,
      [
        id,
        status,
        stored ? JSON.stringify(stored) : null,
        error,
        OPEN[entity],
        entity,
        event.source,
        event.falRequestId ?? null,
      ],
    );
  const moved =
    entity === 'training'
      ? await inTransaction(deps.pool, async (db) => {
          const { rows } = await move(db);
          if (rows[0]) await settleAvatar(db, rows[0].avatar_id, status, result, error);
          return rows[0];
        })
      : (await move(deps.pool)).rows[0];
  const outcome = moved ? status : 'unchanged: already terminal';
  if (moved) deps.onTerminal?.(entity, outcome, moved);
  deps.log.info(
    { entity, id, falRequestId: event.falRequestId, source: event.source },
    `recorder: ${outcome}`,
  );
  return outcome;
}

type ModelResult = ReturnType<typeof toModelResult>;

/** What an outcome event makes of its row: the status, fal's error, and for a completion the parsed output. */
function readOutcome(
  event: FalEvent,
  endpoint: FalEndpointId | null,
): { status: string; error: string | null; result: ModelResult | null } {
  const error = event.error?.message ?? (event.type === 'cancelled' ? 'cancelled by the client' : null);
  if (event.type !== 'completed') return { status: event.type, error, result: null };
  try {
    if (!endpoint) throw new Error('the row has no fal endpoint');
    return { status: 'completed', error, result: toModelResult(endpoint, event.output) };
  } catch (err) {
    const message = `fal returned an output we could not read: ${(err as Error).message.slice(0, 300)}`;
    return { status: 'failed', error: message, result: null };
  }
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

interface FoundRow {
  entity: Entity;
  id: string;
  endpoint: FalEndpointId | null;
}

async function findRow(event: FalEvent, pool: pg.Pool): Promise<FoundRow | undefined> {
  if (event.falRequestId) {
    const { rows } = await pool.query<FoundRow>(
      `SELECT 'training' AS entity, id, fal_endpoint AS endpoint FROM trainings WHERE fal_request_id = $1
       UNION ALL
       SELECT 'generation', id, fal_endpoint FROM generations WHERE fal_request_id = $1`,
      [event.falRequestId],
    );
    return rows[0];
  }
  // No fal request id: only our own worker (a job that failed or was cancelled before reaching fal) or the sweep.
  // Such an event is a failure or a cancel: no output to read, so no endpoint is needed.
  if ((event.source === 'worker' || event.source === 'sweep') && event.entity && event.id) {
    return { entity: event.entity, id: event.id, endpoint: event.endpoint ?? null };
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
