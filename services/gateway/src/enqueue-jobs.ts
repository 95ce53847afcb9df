import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  JOBS,
  QUEUES,
  WORKER_JOB_OPTIONS,
  WORKER_QUEUES,
  queueForEndpoint,
  type CancelJob,
  type FalEndpointId,
  type Logger,
  type PollJob,
  type WorkerQueueName,
} from '@aisha/shared';

/**
 * Puts jobs on the worker queues. Rows are committed first; a job id is its row id, so re-enqueueing is harmless.
 * When Redis refuses (the producer connection does not queue commands offline), the row is marked `enqueue_failed`
 * and the sweep tries again: no row waits in `queued` without a job.
 */
export class JobEnqueuer {
  readonly queues: Record<WorkerQueueName, Queue>;

  constructor(
    connection: Redis,
    prefix: string,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {
    this.queues = Object.fromEntries(
      WORKER_QUEUES.map((q) => [q, new Queue(q, { connection, prefix })]),
    ) as Record<WorkerQueueName, Queue>;
  }

  /** `log`: the request's logger when there is one, so a failed enqueue carries the request id. */
  async training(row: Record<string, unknown>, log = this.log): Promise<boolean> {
    const queue = row.training_type === 'portrait' ? QUEUES.trainPortrait : QUEUES.trainPro;
    const payload = {
      trainingId: row.id,
      tenantId: row.tenant_id,
      avatarId: row.avatar_id,
      trainingType: row.training_type,
      preset: row.preset,
      imagesDataUrl: row.images_data_url,
      ...(row.trigger_phrase ? { triggerPhrase: row.trigger_phrase } : {}),
      ...(row.overrides ? { overrides: row.overrides } : {}),
    };
    return this.submit(
      'trainings',
      queue,
      JOBS.submitTraining,
      String(row.id),
      payload,
      row.enqueue_failed === true,
      log,
    );
  }

  async generation(row: Record<string, unknown>, log = this.log): Promise<boolean> {
    const payload = {
      generationId: row.id,
      tenantId: row.tenant_id,
      trainingType: row.training_type,
      model: row.model,
      request: row.params,
    };
    return this.submit(
      'generations',
      QUEUES.generate,
      JOBS.submitGeneration,
      String(row.id),
      payload,
      row.enqueue_failed === true,
      log,
    );
  }

  /**
   * At most one poll per row waits or runs at a time, whatever the number of sweeps and gateway replicas: the job
   * id is the row's, and a finished poll is removed so that the next sweep may poll again.
   */
  async poll(job: PollJob): Promise<void> {
    await this.queues[queueForEndpoint(job.endpoint)].add(JOBS.poll, job, {
      ...WORKER_JOB_OPTIONS,
      attempts: 3,
      // Two colons: BullMQ refuses custom ids with exactly one.
      jobId: `poll:${job.id}:current`,
      removeOnComplete: true,
      removeOnFail: true,
    });
  }

  async cancel(job: CancelJob, queue: WorkerQueueName): Promise<void> {
    const jobId = `cancel:${job.id}:${job.falRequestId ?? 'unsubmitted'}`;
    await this.queues[queue].add(JOBS.cancel, job, { ...WORKER_JOB_OPTIONS, jobId });
  }

  /**
   * Takes a row's submit job off its queue if no worker has started it, so that a row given up on never becomes a
   * billed fal request later. A job already running cannot be removed: its `submitted` then finds the row terminal
   * and the recorder cancels that request at fal. Returns the job's state when it was looked at.
   */
  async removePendingSubmit(
    entity: 'training' | 'generation',
    row: Record<string, unknown>,
  ): Promise<string> {
    const job = await this.queues[this.queueOf(entity, row.training_type, undefined)].getJob(String(row.id));
    if (!job) return 'missing';
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children')
      await job.remove();
    return state;
  }

  queueOf(entity: 'training' | 'generation', trainingType: unknown, endpoint: unknown): WorkerQueueName {
    if (endpoint) return queueForEndpoint(endpoint as FalEndpointId);
    if (entity === 'generation') return QUEUES.generate;
    return trainingType === 'portrait' ? QUEUES.trainPortrait : QUEUES.trainPro;
  }

  async close(): Promise<void> {
    await Promise.allSettled(Object.values(this.queues).map((q) => q.close()));
  }

  private async submit(
    table: 'trainings' | 'generations',
    queue: WorkerQueueName,
    name: string,
    id: string,
    data: object,
    marked: boolean,
    log: Logger,
  ) {
    try {
      await this.queues[queue].add(name, data, { ...WORKER_JOB_OPTIONS, jobId: id });
    } catch (err) {
      log.warn({ id, queue, err: (err as Error).message }, 'enqueue failed; the sweep will retry');
      // Marked, the row is retried by the next sweep; should even this write fail, the sweep still finds it once
      // it has waited past the poll delay.
      await this.pool
        .query(`UPDATE ${table} SET enqueue_failed = true WHERE id = $1`, [id])
        .catch(() => undefined);
      return false;
    }
    // Only a retry of a marked row writes here: the API's enqueue of a fresh row costs PostgreSQL nothing.
    if (marked) {
      await this.pool
        .query(`UPDATE ${table} SET enqueue_failed = false WHERE id = $1`, [id])
        .catch(() => undefined);
    }
    return true;
  }
}
