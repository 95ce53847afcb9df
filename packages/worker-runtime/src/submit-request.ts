import { UnrecoverableError, type Job } from 'bullmq';
import { ZodError } from 'zod';
import { estimateCostUsd, type FalEndpointId, type FalSubmission } from '@aisha/shared';
import { handleFalFailure, type Subject } from './handle-fal-failure';
import type { WorkerContext } from './worker-context';

export interface SubmitSpec {
  endpoint: FalEndpointId;
  input: Record<string, unknown>;
}

/**
 * The story of a submit: reuse a submission already recorded for this job; otherwise build and validate fal's
 * input, submit it (through the breaker, with a webhook), claim it for the job, record it on the job, emit
 * `submitted`. A job retried after a crash never submits twice when its first submission was recorded.
 */
export async function submitRequest(
  job: Job<{ submission?: FalSubmission }>,
  token: string,
  ctx: WorkerContext,
  subject: Pick<Subject, 'entity' | 'id'>,
  buildSpec: () => SubmitSpec,
): Promise<FalSubmission> {
  const jobId = job.id!;
  const recorded = job.data.submission ?? (await ctx.claims.get(jobId));
  if (recorded) {
    if (!job.data.submission) await job.updateData({ ...job.data, submission: recorded });
    await announce(ctx, subject, recorded);
    ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'resumed' });
    ctx.log.info({ jobId, falRequestId: recorded.falRequestId }, 'already submitted; not submitting again');
    return recorded;
  }

  let spec: SubmitSpec;
  try {
    spec = buildSpec();
  } catch (err) {
    if (!(err instanceof ZodError)) throw err;
    const message = `invalid fal input: ${err.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ')}`;
    await ctx.events.emit({ type: 'failed', ...subject, error: { message } });
    ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'failed' });
    throw new UnrecoverableError(message);
  }

  const webhookUrl = `${ctx.webhookBaseUrl}/v1/fal/webhook?entity=${subject.entity}&id=${encodeURIComponent(subject.id)}`;
  let requestId: string;
  try {
    ({ requestId } = await ctx.fal.call(spec.endpoint, 'submit', (signal) =>
      ctx.fal.fal.submit(spec.endpoint, spec.input, { webhookUrl, signal }),
    ));
  } catch (err) {
    return handleFalFailure(err, job, token, ctx, { ...subject, endpoint: spec.endpoint });
  }

  const submission: FalSubmission = {
    falRequestId: requestId,
    endpoint: spec.endpoint,
    submittedAt: new Date().toISOString(),
  };
  const { owner, ours } = await ctx.claims.claim(jobId, submission);
  if (ours) {
    ctx.metrics.estimatedCost.inc(
      { endpoint: spec.endpoint },
      estimateCostUsd(ctx.prices[spec.endpoint], spec.input),
    );
  } else {
    await cancelDuplicate(ctx, jobId, submission, owner);
  }
  await job.updateData({ ...job.data, submission: owner });
  await announce(ctx, subject, owner);
  ctx.metrics.jobs.inc({ queue: ctx.queueName, job: job.name, outcome: 'submitted' });
  ctx.log.info({ jobId, falRequestId: owner.falRequestId, endpoint: owner.endpoint }, 'submitted to fal');
  return owner;
}

function announce(ctx: WorkerContext, subject: Pick<Subject, 'entity' | 'id'>, submission: FalSubmission) {
  return ctx.events.emit({
    type: 'submitted',
    ...subject,
    falRequestId: submission.falRequestId,
    endpoint: submission.endpoint,
  });
}

// Another run of this job (a stalled job picked up twice) claimed first: ours is a billed orphan. Cancel it.
async function cancelDuplicate(ctx: WorkerContext, jobId: string, ours: FalSubmission, owner: FalSubmission) {
  ctx.metrics.duplicateSubmissions.inc({ endpoint: ours.endpoint });
  ctx.log.warn(
    { jobId, duplicate: ours.falRequestId, kept: owner.falRequestId },
    'duplicate fal submission; cancelling it',
  );
  await ctx.fal
    .call(ours.endpoint, 'cancel', (signal) =>
      ctx.fal.fal.cancel(ours.endpoint, ours.falRequestId, { signal }),
    )
    .catch((err: unknown) =>
      ctx.log.warn({ jobId, err: (err as Error).message }, 'could not cancel the duplicate'),
    );
}
