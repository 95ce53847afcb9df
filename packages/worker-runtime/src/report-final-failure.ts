import type { Job } from 'bullmq';
import { JOBS } from '@aisha/shared';
import type { Subject } from './handle-fal-failure';
import type { WorkerContext } from './worker-context';

/** The row a submit job is for; undefined for poll and cancel jobs, whose failure says nothing about the row. */
export function submitSubject(job: Job): Pick<Subject, 'entity' | 'id'> | undefined {
  if (job.name === JOBS.submitTraining)
    return { entity: 'training', id: String(job.data?.trainingId ?? job.id) };
  if (job.name === JOBS.submitGeneration) {
    return { entity: 'generation', id: String(job.data?.generationId ?? job.id) };
  }
  return undefined;
}

/**
 * BullMQ's `failed` event, for every job: a final failure is counted. design.md: after a submit's last attempt, a
 * `failed` event. `handleFalFailure` emits one when fal gave the verdict; every other end (a payload that does not
 * parse, a Redis error on the last attempt, retries used up, a job stalled too often) reaches only BullMQ's
 * `failed` event, and is reported here. The event's job id is the row's, so one already emitted is found and not
 * sent again (the gateway's recorder would ignore a second anyway).
 */
export async function reportFinalFailure(
  job: Job | undefined,
  err: Error,
  ctx: WorkerContext,
): Promise<void> {
  if (!job) return;
  try {
    if (!(await job.isFailed())) return; // BullMQ retries it
    ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'failed' });
    const subject = submitSubject(job);
    if (!subject || (await ctx.events.hasFailed(subject.id))) return;
    const message =
      err.name === 'UnrecoverableError'
        ? err.message
        : `gave up after ${job.attemptsMade} attempts: ${err.message}`;
    await ctx.events.emit({ type: 'failed', ...subject, error: { message } });
    ctx.log.error({ jobId: job.id, ...subject, attemptsMade: job.attemptsMade }, message);
  } catch (reportErr) {
    ctx.log.error(
      { jobId: job.id, err: (reportErr as Error).message },
      'could not emit the failed event; the sweep finds the row without a job',
    );
  }
}
