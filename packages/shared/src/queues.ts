import { z } from 'zod';
import type { JobsOptions } from 'bullmq';
import { falEndpointId } from './fal/endpoints';
import { avatarModel } from './fal/model-result';
import { trainingType } from './fal/build-input';
import { presetName } from './presets';
import { createGenerationBody } from './api';
import { RETRY_POLICY } from './retry';

/**
 * The job catalog: queue names, job names and their payload schemas, in one place.
 * Renaming a queue strands the jobs already waiting in Redis under the old name: drain first.
 */
export const QUEUES = {
  trainPortrait: 'train-portrait',
  trainPro: 'train-pro',
  generate: 'generate',
  falEvents: 'fal-events',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
export const WORKER_QUEUES = [QUEUES.trainPortrait, QUEUES.trainPro, QUEUES.generate] as const;
export type WorkerQueueName = (typeof WORKER_QUEUES)[number];

export const JOBS = {
  submitTraining: 'submit-training',
  submitGeneration: 'submit-generation',
  poll: 'poll',
  cancel: 'cancel',
  falEvent: 'fal-event',
} as const;

export const entity = z.enum(['training', 'generation']);
export type Entity = z.infer<typeof entity>;

/** Written by a worker onto its job (`job.updateData`) before it acknowledges a submit. */
export const falSubmission = z.object({
  falRequestId: z.string().min(1),
  endpoint: falEndpointId,
  submittedAt: z.iso.datetime(),
});
export type FalSubmission = z.infer<typeof falSubmission>;

export const submitTrainingJob = z.object({
  trainingId: z.string().min(1),
  tenantId: z.string().min(1),
  avatarId: z.string().min(1),
  trainingType,
  preset: presetName,
  imagesDataUrl: z.url(),
  triggerPhrase: z.string().optional(),
  overrides: z.record(z.string(), z.unknown()).optional(),
  submission: falSubmission.optional(),
});
export type SubmitTrainingJob = z.infer<typeof submitTrainingJob>;

/** The API's generation request without the avatar: the job carries the avatar's model and kind instead. */
export const generationParams = createGenerationBody.omit({ avatar_id: true });

export const submitGenerationJob = z
  .object({
    generationId: z.string().min(1),
    tenantId: z.string().min(1),
    /** The avatar's kind: it picks the default finetune_strength (DEFAULT_FINETUNE_STRENGTH). */
    trainingType: trainingType.optional(),
    model: avatarModel,
    request: generationParams,
    submission: falSubmission.optional(),
  })
  // Jobs enqueued before the kind was carried: the kind their model implies (a finetune is a style's).
  .transform((job) => ({
    ...job,
    trainingType: job.trainingType ?? (job.model.kind === 'finetune' ? 'style' : 'portrait'),
  }));
export type SubmitGenerationJob = z.infer<typeof submitGenerationJob>;

/** From the gateway's sweep: ask fal what became of a request we did not hear back about. */
export const pollJob = z.object({
  entity,
  id: z.string().min(1),
  falRequestId: z.string().min(1),
  endpoint: falEndpointId,
});
export type PollJob = z.infer<typeof pollJob>;

export const cancelJob = z.object({
  entity,
  id: z.string().min(1),
  falRequestId: z.string().min(1).optional(),
  endpoint: falEndpointId.optional(),
  /** `user`: the row is cancelled; `duplicate`: an orphan second submission is cancelled at fal, the row is not. */
  reason: z.enum(['user', 'duplicate']).default('user'),
});
export type CancelJob = z.infer<typeof cancelJob>;

/** The queue that owns a fal endpoint's requests (where its poll and cancel jobs go). */
export function queueForEndpoint(endpoint: z.infer<typeof falEndpointId>): WorkerQueueName {
  switch (endpoint) {
    case 'fal-ai/flux-lora-portrait-trainer':
      return QUEUES.trainPortrait;
    case 'fal-ai/flux-pro-trainer':
    case 'fal-ai/flux-lora-fast-training':
      return QUEUES.trainPro;
    default:
      return QUEUES.generate;
  }
}

/**
 * Default options for jobs on the worker queues: BullMQ owns retries (RETRY_POLICY's attempts, our jittered backoff),
 * and finished jobs are kept long enough to dedupe by job id, not forever (PostgreSQL is the ledger).
 */
export const FAL_BACKOFF_TYPE = 'fal-jitter';
export const WORKER_JOB_OPTIONS: JobsOptions = {
  attempts: RETRY_POLICY.attempts,
  backoff: { type: FAL_BACKOFF_TYPE },
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 50_000 },
};
export const EVENT_JOB_OPTIONS: JobsOptions = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 },
};
