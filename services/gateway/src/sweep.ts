import type pg from 'pg';
import type { FalEndpointId, Logger } from '@aisha/shared';
import { purgeExpiredIdempotencyKeys } from './api/idempotency';
import type { JobEnqueuer } from './enqueue-jobs';
import { cancelDuplicate, recordDuplicate, recordEvent, type RecorderDeps } from './recorder/record-event';

export interface SweepSettings {
  everyMs: number;
  /** A submitted row older than this without news gets a poll (webhooks can be lost); per endpoint if given. */
  pollAfterMs: { training: number; generation: number; byEndpoint: Partial<Record<FalEndpointId, number>> };
  /** A row still open after this fails with "no result from fal". */
  deadlineMs: { training: number; generation: number };
  /** A parked completion still unbound after this is an orphan fal request (see `cancelOrphans`). */
  orphanAfterMs: number;
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
  for (const entity of ['training', 'generation'] as const) {
    totals.expired += await expireOverdue(entity, settings.deadlineMs[entity], deps);
    totals.requeued += await requeueLost(entity, settings.pollAfterMs[entity], deps);
    totals.polled += await pollLate(
      entity,
      settings.pollAfterMs[entity],
      settings.pollAfterMs.byEndpoint,
      deps,
    );
  }
  await cancelOrphans(settings.orphanAfterMs, deps);
  await purgeExpiredIdempotencyKeys(deps.pool);
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
    if (row.status === 'queued') {
      await deps.jobs
        .removePendingSubmit(entity, row)
        .catch((err: Error) =>
          deps.log.warn({ id: row.id, err: err.message }, 'could not remove submit job'),
        );
    }
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

/**
 * Queued rows whose enqueue failed, whose job Redis lost, or whose job ended without its outcome reaching us:
 * failed by BullMQ itself (stalled too often by crashing workers) or completed while its `submitted` event was
 * lost. A finished job is retried; it resumes from its recorded submission, so fal sees no second request.
 */
async function requeueLost(entity: Entity, graceMs: number, deps: SweepDeps): Promise<number> {
  const { jobs } = deps;
  // A fresh row's job is where the gateway just put it: only rows whose enqueue failed, or that have waited longer
  // than `graceMs`, are worth a look in Redis (a large, young backlog costs the sweep nothing).
  const { rows } = await deps.pool.query(
    `SELECT * FROM ${TABLE[entity]}
     WHERE status = 'queued' AND (enqueue_failed OR updated_at < now() - make_interval(secs => $1))`,
    [graceMs / 1000],
  );
  let requeued = 0;
  for (const row of rows) {
    const queue = jobs.queues[jobs.queueOf(entity, row.training_type, undefined)];
    const job = row.enqueue_failed ? undefined : await queue.getJob(row.id);
    if (job) {
      const state = await job.getState();
      if (state !== 'failed' && state !== 'completed') continue;
      await job.retry(state);
      deps.log.warn({ id: row.id, state }, 'job ended but its row is still queued; retrying it');
      requeued += 1;
      continue;
    }
    if (await (entity === 'training' ? jobs.training(row) : jobs.generation(row))) requeued += 1;
  }
  return requeued;
}

async function pollLate(
  entity: Entity,
  afterMs: number,
  byEndpointMs: Partial<Record<FalEndpointId, number>>,
  deps: SweepDeps,
): Promise<number> {
  const byEndpointS = Object.fromEntries(Object.entries(byEndpointMs).map(([e, ms]) => [e, ms / 1000]));
  const { rows } = await deps.pool.query(
    `SELECT id, fal_request_id, fal_endpoint FROM ${TABLE[entity]}
     WHERE status IN ('submitted', 'in_progress') AND fal_request_id IS NOT NULL
       AND updated_at < now() - make_interval(secs => COALESCE(($2::jsonb ->> fal_endpoint)::float8, $1))`,
    [afterMs / 1000, JSON.stringify(byEndpointS)],
  );
  for (const row of rows) {
    await deps.jobs.poll({
      entity,
      id: row.id,
      falRequestId: row.fal_request_id,
      endpoint: row.fal_endpoint,
    });
  }
  return rows.length;
}

/**
 * A submit that timed out may still have been accepted by fal (its queue API has no idempotency key): the retry
 * then makes a second request, which no row ever binds. Its completion waits in parked_events. Once it is older
 * than any honest wait for a `submitted` event, and the row its URL names is bound to another request (or has
 * ended), it is an orphan: counted as a duplicate and cancelled at fal on the row's endpoint. The URL's row is
 * only a hint here: the request is ours (fal signed it) and unbound, so cancelling it can hurt no row.
 */
async function cancelOrphans(orphanAfterMs: number, deps: SweepDeps): Promise<void> {
  for (const entity of ['training', 'generation'] as const) {
    const { rows } = await deps.pool.query<{
      fal_request_id: string;
      id: string;
      fal_endpoint: FalEndpointId | null;
    }>(
      `SELECT p.fal_request_id, r.id, r.fal_endpoint
         FROM parked_events p
         JOIN ${TABLE[entity]} r ON r.id = p.event->>'id' AND p.event->>'entity' = $1
        WHERE p.received_at < now() - make_interval(secs => $2)
          AND r.fal_request_id IS DISTINCT FROM p.fal_request_id
          AND (r.fal_request_id IS NOT NULL OR r.status NOT IN ('queued', 'submitted', 'in_progress'))`,
      [entity, orphanAfterMs / 1000],
    );
    for (const orphan of rows) {
      const news = await recordDuplicate(deps.pool, entity, orphan.id, orphan.fal_request_id);
      await deps.pool.query('DELETE FROM parked_events WHERE fal_request_id = $1', [orphan.fal_request_id]);
      if (news) {
        await cancelDuplicate(
          { entity, id: orphan.id, falRequestId: orphan.fal_request_id, endpoint: orphan.fal_endpoint },
          deps,
        );
      }
    }
  }
}

// Completions that never found their row: after the longest deadline nobody will bind them.
async function dropUnclaimedParked(maxDeadlineMs: number, deps: SweepDeps): Promise<void> {
  const { rowCount } = await deps.pool.query(
    'DELETE FROM parked_events WHERE received_at < now() - make_interval(secs => $1)',
    [maxDeadlineMs / 1000],
  );
  if (rowCount) deps.log.warn({ dropped: rowCount }, 'dropped parked completions that no row ever claimed');
}
