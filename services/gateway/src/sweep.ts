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

/**
 * The reconciler: nothing stays "training" forever. Re-enqueues queued rows whose job never reached Redis,
 * asks the owning worker to poll fal for rows whose webhook is late, and fails rows past their deadline.
 */
export async function sweep(
  settings: SweepSettings,
  deps: RecorderDeps & { jobs: JobEnqueuer; pool: pg.Pool; log: Logger },
): Promise<{ requeued: number; polled: number; expired: number }> {
  const { pool, jobs } = deps;
  let requeued = 0;
  let polled = 0;
  let expired = 0;
  const round = Math.floor(Date.now() / settings.everyMs);

  for (const entity of ['training', 'generation'] as const) {
    const table = entity === 'training' ? 'trainings' : 'generations';
    const deadline = settings.deadlineMs[entity];

    const { rows: stale } = await pool.query(
      `SELECT id FROM ${table} WHERE status IN ('queued', 'submitted', 'in_progress') AND created_at < now() - make_interval(secs => $1)`,
      [deadline / 1000],
    );
    for (const row of stale) {
      const message = `no result from fal within ${Math.round(deadline / 60_000)} min; giving up`;
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
      if (outcome === 'failed') expired += 1;
    }

    // Queued rows whose enqueue failed, or whose job Redis lost (a restart without persistence).
    const { rows: queued } = await pool.query(`SELECT * FROM ${table} WHERE status = 'queued'`);
    for (const row of queued) {
      const queue = jobs.queues[jobs.queueOf(entity, row.training_type, undefined)];
      if (row.enqueued && (await queue.getJob(row.id))) continue;
      if (await (entity === 'training' ? jobs.training(row) : jobs.generation(row))) requeued += 1;
    }

    const { rows: late } = await pool.query(
      `SELECT id, fal_request_id, fal_endpoint FROM ${table}
       WHERE status IN ('submitted', 'in_progress') AND fal_request_id IS NOT NULL
         AND updated_at < now() - make_interval(secs => $1)`,
      [settings.pollAfterMs[entity] / 1000],
    );
    for (const row of late) {
      await jobs.poll(
        { entity, id: row.id, falRequestId: row.fal_request_id, endpoint: row.fal_endpoint },
        round,
      );
      polled += 1;
    }
  }

  // Completions that never found their row: after the longest deadline nobody will bind them.
  const maxDeadline = Math.max(settings.deadlineMs.training, settings.deadlineMs.generation);
  const { rowCount } = await pool.query(
    'DELETE FROM parked_events WHERE received_at < now() - make_interval(secs => $1)',
    [maxDeadline / 1000],
  );
  if (rowCount) deps.log.warn({ dropped: rowCount }, 'dropped parked completions that no row ever claimed');
  if (requeued || polled || expired) deps.log.info({ requeued, polled, expired }, 'sweep');
  return { requeued, polled, expired };
}
