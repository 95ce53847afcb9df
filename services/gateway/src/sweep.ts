import type pg from 'pg';
import type { Logger } from '@aisha/shared';
import type { JobEnqueuer } from './enqueue-jobs';
import { recordEvent, type RecorderDeps } from './recorder/record-event';

export interface SweepSettings {
  everyMs: number;
  /** A submitted row older than this without news gets a poll (webhooks can be lost). */
  pollAfterMs: { training: number; generation: number };
  /** A row still open after this fails with "no result from fal". */
  deadlineMs: { training: number; generation: number };
}
type SweepDeps = RecorderDeps & { jobs: JobEnqueuer; pool: pg.Pool; log: Logger };
type Entity = 'training' | 'generation';
const TABLE: Record<Entity, string> = { training: 'trainings', generation: 'generations' };

/**
 * The reconciler: nothing stays "training" forever. Fails rows past their deadline, re-enqueues queued rows whose
 * job never reached Redis, and asks the owning worker to poll fal for rows whose webhook is late.
 */
export async function sweep(
  settings: SweepSettings,
  deps: SweepDeps,
): Promise<{ requeued: number; polled: number; expired: number }> {
  const totals = { requeued: 0, polled: 0, expired: 0 };
  // One poll job id per row and sweep round: a late row is polled once per round, not once per replica.
  const round = Math.floor(Date.now() / settings.everyMs);
  for (const entity of ['training', 'generation'] as const) {
    totals.expired += await expireOverdue(entity, settings.deadlineMs[entity], deps);
    totals.requeued += await requeueLost(entity, deps);
    totals.polled += await pollLate(entity, settings.pollAfterMs[entity], round, deps);
  }
  await dropUnclaimedParked(Math.max(settings.deadlineMs.training, settings.deadlineMs.generation), deps);
  if (totals.requeued || totals.polled || totals.expired) deps.log.info(totals, 'sweep');
  return totals;
}

async function expireOverdue(entity: Entity, deadlineMs: number, deps: SweepDeps): Promise<number> {
  const { rows } = await deps.pool.query(
    `SELECT * FROM ${TABLE[entity]}
     WHERE status IN ('queued', 'submitted', 'in_progress') AND created_at < now() - make_interval(secs => $1)`,
    [deadlineMs / 1000],
  );
  let expired = 0;
  for (const row of rows) {
    const message = `no result from fal within ${Math.round(deadlineMs / 60_000)} min; giving up`;
    const outcome = await recordEvent(
      {
        type: 'failed',
        entity,
        id: row.id,
        source: 'sweep',
        at: new Date().toISOString(),
        error: { message },
      },
      deps,
    );
    if (outcome !== 'failed') continue;
    expired += 1;
    // Stop fal working (and billing) on a request nobody waits for any more; the row is already terminal.
    if (row.fal_request_id) {
      await deps.jobs
        .cancel(
          {
            entity,
            id: row.id,
            falRequestId: row.fal_request_id,
            endpoint: row.fal_endpoint,
            reason: 'user',
          },
          deps.jobs.queueOf(entity, row.training_type, row.fal_endpoint),
        )
        .catch((err: Error) => deps.log.warn({ id: row.id, err: err.message }, 'could not enqueue cancel'));
    }
  }
  return expired;
}

// Queued rows whose enqueue failed, or whose job Redis lost (a restart without persistence).
async function requeueLost(entity: Entity, deps: SweepDeps): Promise<number> {
  const { jobs } = deps;
  const { rows } = await deps.pool.query(`SELECT * FROM ${TABLE[entity]} WHERE status = 'queued'`);
  let requeued = 0;
  for (const row of rows) {
    const queue = jobs.queues[jobs.queueOf(entity, row.training_type, undefined)];
    if (row.enqueued && (await queue.getJob(row.id))) continue;
    if (await (entity === 'training' ? jobs.training(row) : jobs.generation(row))) requeued += 1;
  }
  return requeued;
}

async function pollLate(entity: Entity, afterMs: number, round: number, deps: SweepDeps): Promise<number> {
  const { rows } = await deps.pool.query(
    `SELECT id, fal_request_id, fal_endpoint FROM ${TABLE[entity]}
     WHERE status IN ('submitted', 'in_progress') AND fal_request_id IS NOT NULL
       AND updated_at < now() - make_interval(secs => $1)`,
    [afterMs / 1000],
  );
  for (const row of rows) {
    await deps.jobs.poll(
      { entity, id: row.id, falRequestId: row.fal_request_id, endpoint: row.fal_endpoint },
      round,
    );
  }
  return rows.length;
}

// Completions that never found their row: after the longest deadline nobody will bind them.
async function dropUnclaimedParked(maxDeadlineMs: number, deps: SweepDeps): Promise<void> {
  const { rowCount } = await deps.pool.query(
    'DELETE FROM parked_events WHERE received_at < now() - make_interval(secs => $1)',
    [maxDeadlineMs / 1000],
  );
  if (rowCount) deps.log.warn({ dropped: rowCount }, 'dropped parked completions that no row ever claimed');
}
