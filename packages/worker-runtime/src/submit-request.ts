import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { ZodError } from 'zod';
import {
  classifyFalError,
  estimateCostUsd,
  newSubmissionNonce,
  type FalEndpointId,
  type FalSubmission,
} from '@aisha/shared';
import { handleFalFailure, type Subject } from './handle-fal-failure';
import type { WorkerContext } from './worker-context';

export interface SubmitSpec {
  endpoint: FalEndpointId;
  input: Record<string, unknown>;
}

/**
 * The story of a submit: reuse a submission already recorded for this job; otherwise build and validate fal's
 * input, submit it (through the breaker, with a webhook), claim it for the job, record it on the job, emit
 * `submitted`. A job retried after a crash never submits twice when its first submission was recorded, and
 * adopts the request of a submit it never heard back from when that request's webhook names it.
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
    throw new UnrecoverableError(message);
  }

  const submission =
    (await adoptUnansweredSubmit(job, token, ctx, spec)) ?? (await submitNow(job, token, ctx, subject, spec));
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

/**
 * A previous run of this job may have reached fal without our hearing back (a crash, a timeout): fal's queue has
 * no idempotency key, so submitting again would make a second, billed request. Adopt the request whose verified
 * webhook carried the previous submit's nonce; while none has come, wait (without spending an attempt) up to
 * FAL_ADOPT_WINDOW_MS, then give up and submit again (the sweep cancels the orphan if one turns up later).
 */
async function adoptUnansweredSubmit(
  job: Job,
  token: string,
  ctx: WorkerContext,
  spec: SubmitSpec,
): Promise<FalSubmission | undefined> {
  const previous = await ctx.claims.intent(job.id!);
  if (!previous) return undefined;
  const adopted = await ctx.claims.requestForNonce(previous.nonce);
  if (adopted) {
    ctx.log.info({ jobId: job.id, falRequestId: adopted }, 'adopted the request of an unanswered submit');
    return { falRequestId: adopted, endpoint: spec.endpoint, submittedAt: previous.at };
  }
  const waitedMs = Date.now() - Date.parse(previous.at);
  if (waitedMs >= ctx.adoptWindowMs) return undefined;
  const delay = Math.min(2_000, ctx.adoptWindowMs - waitedMs);
  ctx.metrics.rateLimitDelays.inc({ queue: ctx.queueName, reason: 'awaiting_webhook' });
  await job.moveToDelayed(Date.now() + delay, token);
  throw new DelayedError();
}

async function submitNow(
  job: Job,
  token: string,
  ctx: WorkerContext,
  subject: Pick<Subject, 'entity' | 'id'>,
  spec: SubmitSpec,
): Promise<FalSubmission> {
  const nonce = newSubmissionNonce();
  const submittedAt = new Date().toISOString();
  await ctx.claims.recordIntent(job.id!, { nonce, at: submittedAt, endpoint: spec.endpoint });
  const webhookUrl =
    `${ctx.webhookBaseUrl}/v1/fal/webhook?entity=${subject.entity}&id=${encodeURIComponent(subject.id)}` +
    `&nonce=${nonce}`;
  try {
    const { requestId } = await ctx.fal.call(spec.endpoint, 'submit', (signal) =>
      ctx.fal.fal.submit(spec.endpoint, spec.input, { webhookUrl, signal }),
    );
    return { falRequestId: requestId, endpoint: spec.endpoint, submittedAt };
  } catch (err) {
    // An answer from fal (4xx, 500, 503) or a call never made (open breaker) created nothing there. Silence, and a
    // proxy's 502/504 (fal may have accepted behind it), may have: the intent stays for the retry to look for.
    const failure = classifyFalError(err);
    const answered = failure.status !== undefined && failure.status !== 502 && failure.status !== 504;
    if (answered || failure.kind === 'breaker_open') await ctx.claims.clearIntent(job.id!);
    return handleFalFailure(err, job, token, ctx, { ...subject, endpoint: spec.endpoint });
  }
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
