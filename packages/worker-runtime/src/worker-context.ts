import type { Job, Queue, Worker } from 'bullmq';
import type { Logger, PriceEntry, WorkerQueueName } from '@aisha/shared';
import type { EventPublisher } from './event-publisher';
import type { FalCaller } from './fal-caller';
import type { SubmissionClaims } from './submission-claim';
import type { WorkerMetrics } from './worker-metrics';

/** What every job handler is given: the worker's own queue, fal, events, claims, metrics and log. */
export interface WorkerContext {
  queueName: WorkerQueueName;
  queue: Queue;
  worker: () => Worker;
  fal: FalCaller;
  events: EventPublisher;
  claims: SubmissionClaims;
  metrics: WorkerMetrics;
  log: Logger;
  webhookBaseUrl: string;
  prices: Record<string, PriceEntry>;
  /** How long an open breaker delays a job (about the breaker's reset time). */
  breakerDelayMs: number;
  /** How long a retried job waits for the webhook of a submit it never heard back from before submitting again. */
  adoptWindowMs: number;
}

export type JobHandler = (job: Job, token: string, ctx: WorkerContext) => Promise<unknown>;
