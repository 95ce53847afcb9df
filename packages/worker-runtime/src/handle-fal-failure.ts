import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { classifyFalError, retryDelay, type Entity, type FalEndpointId } from '@aisha/shared';
import type { WorkerContext } from './worker-context';

export interface Subject {
  entity: Entity;
  id: string;
  falRequestId?: string;
  endpoint?: FalEndpointId;
}

/**
 * Decides what a failed fal call means for the job, following design.md's one-retry-owner rule:
 * 429 and an open breaker delay the job without spending an attempt; 401/403/422 and other 4xx fail it now with a
 * `failed` event; anything else goes back to BullMQ, which retries with jittered backoff until the last attempt.
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
    log.error({ kind: failure.kind, status: failure.status }, failure.message);
    await ctx.events.emit({ type: 'failed', ...subject, error: { message: failure.message } });
    ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'failed' });
    throw new UnrecoverableError(failure.message);
  }

  const attempts = job.opts.attempts ?? 1;
  if (job.attemptsMade + 1 >= attempts) {
    const message = `gave up after ${attempts} attempts: ${failure.message}`;
    log.error({ kind: failure.kind }, message);
    await ctx.events.emit({ type: 'failed', ...subject, error: { message } });
    ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'failed' });
    throw new UnrecoverableError(message);
  }
  ctx.metrics.retries.inc({
    queue: ctx.queueName,
    reason: failure.status ? String(failure.status) : failure.kind,
  });
  log.warn(
    { kind: failure.kind, status: failure.status, attempt: job.attemptsMade + 1 },
    `will retry: ${failure.message}`,
  );
  throw err;
}
