import type { Job } from 'bullmq';
import { cancelJob, classifyFalError, type CancelJob, type FalSubmission } from '@aisha/shared';
import { handleFalFailure } from './handle-fal-failure';
import { reportRequestState } from './poll-request';
import type { WorkerContext } from './worker-context';

/**
 * The story of a cancel: find the fal request (given, or recorded for the row's submit job); if the job never
 * reached fal, take it off the queue; otherwise cancel at fal. A request fal says is already finished is polled,
 * so the row gets its real outcome. A `duplicate` cancel only stops an orphan at fal; the row is not touched.
 */
export async function cancelRequest(job: Job<CancelJob>, token: string, ctx: WorkerContext): Promise<string> {
  const data = cancelJob.parse(job.data);
  const submission =
    data.falRequestId && data.endpoint
      ? { falRequestId: data.falRequestId, endpoint: data.endpoint }
      : await recordedSubmission(ctx, data.id);

  if (!submission) {
    const submitJob = await ctx.queue.getJob(data.id);
    const state = submitJob ? await submitJob.getState() : 'missing';
    // A submit in flight will record its request id in a moment: retry the cancel then.
    if (state === 'active') throw new Error(`submit job ${data.id} is running; cancel retried`);
    if (submitJob && state !== 'completed' && state !== 'failed') await submitJob.remove();
    await ctx.events.emit({ type: 'cancelled', entity: data.entity, id: data.id });
    ctx.log.info({ id: data.id, state }, 'cancelled before reaching fal');
    return 'cancelled';
  }

  const { falRequestId, endpoint } = submission;
  const subject = { entity: data.entity, id: data.id, falRequestId, endpoint };
  try {
    await ctx.fal.call(endpoint, 'cancel', (signal) =>
      ctx.fal.fal.cancel(endpoint, falRequestId, { signal }),
    );
  } catch (err) {
    const kind = classifyFalError(err).kind;
    if (kind !== 'client' && kind !== 'not_found') return handleFalFailure(err, job, token, ctx, subject);
    if (data.reason === 'duplicate') return 'already finished';
    // Already finished at fal: report what really happened.
    return reportRequestState(job, token, ctx, subject);
  }
  if (data.reason === 'user') await ctx.events.emit({ type: 'cancelled', ...subject });
  ctx.log.info({ id: data.id, falRequestId, reason: data.reason }, 'cancelled at fal');
  return 'cancelled';
}

async function recordedSubmission(
  ctx: WorkerContext,
  jobId: string,
): Promise<Pick<FalSubmission, 'falRequestId' | 'endpoint'> | undefined> {
  const claimed = await ctx.claims.get(jobId);
  if (claimed) return claimed;
  const submitJob = await ctx.queue.getJob(jobId);
  return (submitJob?.data as { submission?: FalSubmission } | undefined)?.submission;
}
