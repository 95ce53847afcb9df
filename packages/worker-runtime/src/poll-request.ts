import type { Job } from 'bullmq';
import { FalHttpError, classifyFalError, falMessage, pollJob, type PollJob } from '@aisha/shared';
import { handleFalFailure } from './handle-fal-failure';
import type { WorkerContext } from './worker-context';

/**
 * The story of a poll (the sweep asks when a webhook is late): ask fal for the request's status; when it is
 * COMPLETED fetch the result and emit the same `completed`/`failed` event a webhook would (same event job id, so
 * the two collapse); while it runs, emit `progress`.
 */
export async function pollRequest(job: Job<PollJob>, token: string, ctx: WorkerContext): Promise<string> {
  return reportRequestState(job, token, ctx, pollJob.parse(job.data));
}

/** Asks fal where a request stands and emits what it says. */
export async function reportRequestState(
  job: Job,
  token: string,
  ctx: WorkerContext,
  subject: PollJob,
): Promise<string> {
  const { endpoint, falRequestId } = subject;
  let status;
  try {
    status = await ctx.fal.call(endpoint, 'status', (signal) =>
      ctx.fal.fal.status(endpoint, falRequestId, { signal }),
    );
  } catch (err) {
    return handleFalFailure(err, job, token, ctx, subject);
  }

  if (status.status === 'IN_QUEUE') {
    await ctx.events.emit({
      type: 'progress',
      ...subject,
      source: 'poll',
      progress: { queuePosition: status.queue_position },
    });
    return status.status;
  }
  if (status.status === 'IN_PROGRESS') {
    await ctx.events.emit({
      type: 'progress',
      ...subject,
      source: 'poll',
      progress: percentFromLogs(status.logs),
    });
    return status.status;
  }

  try {
    const output = await ctx.fal.call(endpoint, 'result', (signal) =>
      ctx.fal.fal.result(endpoint, falRequestId, { signal }),
    );
    await ctx.events.emit({ type: 'completed', ...subject, source: 'poll', output });
    ctx.log.info({ jobId: job.id, falRequestId }, 'poll found the request completed');
    return 'completed';
  } catch (err) {
    if (!isRunFailure(err)) return handleFalFailure(err, job, token, ctx, subject);
    const message = classifyFalError(err).message;
    await ctx.events.emit({ type: 'failed', ...subject, source: 'poll', error: { message } });
    ctx.log.info({ jobId: job.id, falRequestId, message }, 'poll found the request failed');
    return 'failed';
  }
}

/**
 * fal reports a failed run as COMPLETED and answers its result with the run's error. That is a verdict, not a
 * hiccup: a 4xx, or a 5xx that carries fal's error detail. A bare 502/503/504 or a transport error is retried.
 */
export function isRunFailure(err: unknown): boolean {
  const kind = classifyFalError(err).kind;
  if (kind === 'validation' || kind === 'client' || kind === 'not_found') return true;
  return err instanceof FalHttpError && err.status === 500 && falMessage(err.body) !== undefined;
}

function percentFromLogs(logs: Array<{ message: string }> | undefined): { percent?: number } {
  for (const log of [...(logs ?? [])].reverse()) {
    const match = /(\d{1,3}(?:\.\d+)?)\s*%/.exec(log.message);
    if (match) return { percent: Math.min(100, Number(match[1])) };
  }
  return {};
}
