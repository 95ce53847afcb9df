import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { classifyFalError, retryDelay, type Entity, type FalEndpointId } from '@aisha/shared';
import { submitSubject } from './report-final-failure';
import type { WorkerContext } from './worker-context';

export interface Subject {
  entity: Entity;
  id: string;
  falRequestId?: string;
  endpoint?: FalEndpointId;
}

/**
 * Decides what a failed fal call means for the job, following design.md's one-retry-owner rule:
 * a call aborted by shutdown hands the job back; 429 and an open breaker delay the job without spending an
 * attempt; 401/403/422 and other 4xx fail it now with a `failed` event; anything else goes back to BullMQ, whose
 * backoff strategy logs and counts the retry, and after whose last attempt `reportFinalFailure` emits `failed`.
 */
export async function handleFalFailure(
  err: unknown,
  job: Job,
  token: string,
  ctx: WorkerContext,
  subject: Subject,
): Promise<never> {
  const failure = classifyFalError(err);
  const log = ctx.log.child({
    jobId: job.id,
    falRequestId: subject.falRequestId,
    endpoint: subject.endpoint,
  });

  if (ctx.fal.jobAborted) {
    // The worker is shutting down and aborted the call: release the job without spending an attempt. A submit's
    // intent stays, so whoever takes the job next adopts the request if fal accepted it, rather than resubmitting.
    log.warn('fal call aborted by shutdown; job released for another worker');
    await job.moveToDelayed(Date.now(), token);
    throw new DelayedError();
  }

  if (failure.kind === 'rate_limit' || failure.kind === 'breaker_open') {
    const delay =
      failure.kind === 'rate_limit'
        ? (failure.retryAfterMs ?? retryDelay(1))
        : Math.round(ctx.breakerDelayMs * (0.5 + Math.random()));
    ctx.metrics.rateLimitDelays.inc({ queue: ctx.queueName, reason: failure.kind });
    log.info({ reason: failure.kind, delayMs: delay }, 'fal call deferred without spending an attempt');
    await job.moveToDelayed(Date.now() + delay, token);
    throw new DelayedError();
  }

  if (!failure.retryable) {
    log.error({ kind: failure.kind, status: failure.status, job: job.name }, failure.message);
    // A rejected key says nothing about the request a poll or cancel asks about: fal may well have finished it.
    // Only a submit's 401/403 fails the row; the poll or cancel job alone fails (counted in reportFinalFailure).
    if (failure.kind !== 'auth' || submitSubject(job)) {
      await ctx.events.emit({ type: 'failed', ...subject, error: { message: failure.message } });
    }
    throw new UnrecoverableError(failure.message);
  }

  throw err;
}
