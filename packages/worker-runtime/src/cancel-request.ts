import { DelayedError, type Job } from 'bullmq';
import {
  cancelJob,
  classifyFalError,
  type CancelJob,
  type FalEndpointId,
  type FalSubmission,
} from '@aisha/shared';
import { handleFalFailure } from './handle-fal-failure';
import { reportRequestState } from './poll-request';
import type { WorkerContext } from './worker-context';

type FalRequest = Pick<FalSubmission, 'falRequestId' | 'endpoint'>;

/**
 * The story of a cancel: find the fal request (given, or recorded for the row's submit job); if the job never
 * reached fal, take it off the queue, and stop the request of a submit it never heard back from once that is known;
 * otherwise cancel at fal. A request fal says is already finished is polled, so the row gets its real outcome. A
 * `duplicate` cancel only stops an orphan at fal; the row is not touched.
 */
export async function cancelRequest(job: Job<CancelJob>, token: string, ctx: WorkerContext): Promise<string> {
  const data = cancelJob.parse(job.data);
  let submission: FalRequest | undefined =
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
    ctx.log.info({ id: data.id, state }, 'cancelled before a submission was recorded');
    submission = await requestOfUnansweredSubmit(job, token, ctx, data.id, data.endpoint);
    if (!submission) return 'cancelled';
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

async function recordedSubmission(ctx: WorkerContext, jobId: string): Promise<FalRequest | undefined> {
  const claimed = await ctx.claims.get(jobId);
  if (claimed) return claimed;
  const submitJob = await ctx.queue.getJob(jobId);
  return (submitJob?.data as { submission?: FalSubmission } | undefined)?.submission;
}

/**
 * The removed submit job may have reached fal without hearing back (an intent, no recorded submission: it was in
 * the adopt-wait or a retry's backoff), so fal may be running a request for it. That request's webhook names it by
 * nonce (webhook-ingest records nonce → request id). This cancel waits for it, without spending an attempt, as long
 * as the submit would have (FAL_ADOPT_WINDOW_MS from the intent), and returns it to be cancelled. After that the
 * intent is left in place: a request surfacing later is an orphan, which the gateway's sweep cancels.
 */
async function requestOfUnansweredSubmit(
  job: Job,
  token: string,
  ctx: WorkerContext,
  rowJobId: string,
  endpointHint: FalEndpointId | undefined,
): Promise<FalRequest | undefined> {
  const intent = await ctx.claims.intent(rowJobId);
  if (!intent) return undefined;
  const falRequestId = await ctx.claims.requestForNonce(intent.nonce);
  const endpoint = intent.endpoint ?? endpointHint;
  if (falRequestId && endpoint) return { falRequestId, endpoint };
  const waitedMs = Date.now() - Date.parse(intent.at);
  if (falRequestId || waitedMs >= ctx.adoptWindowMs) {
    ctx.log.warn(
      { id: rowJobId, falRequestId, nonce: intent.nonce },
      'an unanswered submit of the cancelled job cannot be cancelled here; left to the sweep',
    );
    return undefined;
  }
  ctx.metrics.rateLimitDelays.inc({ queue: ctx.queueName, reason: 'awaiting_webhook' });
  await job.moveToDelayed(Date.now() + Math.min(2_000, ctx.adoptWindowMs - waitedMs), token);
  throw new DelayedError();
}
