import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import express from 'express';
import { Queue, UnrecoverableError, Worker, type Job, type MinimalJob } from 'bullmq';
import { Redis } from 'ioredis';
import {
  FAL_BACKOFF_TYPE,
  JOBS,
  QUEUES,
  classifyFalError,
  createFal,
  createMetricsRegistry,
  opsRouter,
  retryDelay,
  type Logger,
  type WorkerQueueName,
} from '@aisha/shared';
import type { Registry } from 'prom-client';
import { ZodError, z } from 'zod';
import { cancelRequest } from './cancel-request';
import { EventPublisher } from './event-publisher';
import { FalCaller } from './fal-caller';
import { pollRequest } from './poll-request';
import { reportFinalFailure } from './report-final-failure';
import { SubmissionClaims } from './submission-claim';
import type { JobHandler, WorkerContext } from './worker-context';
import type { WorkerRuntimeConfig } from './worker-env';
import { workerMetrics } from './worker-metrics';

export interface WorkerServiceSpec {
  service: string;
  queue: WorkerQueueName;
  /** The queue's submit handler; poll and cancel are the same for every worker and added here. */
  handlers: Record<string, JobHandler>;
}

const EXPECTED_JOBS: Record<WorkerQueueName, string[]> = {
  [QUEUES.trainPortrait]: [JOBS.submitTraining, JOBS.poll, JOBS.cancel],
  [QUEUES.trainPro]: [JOBS.submitTraining, JOBS.poll, JOBS.cancel],
  [QUEUES.generate]: [JOBS.submitGeneration, JOBS.poll, JOBS.cancel],
};

export interface WorkerService {
  port: number;
  registry: Registry;
  worker: Worker;
  close(): Promise<void>;
}

/** Starts one worker service: its BullMQ worker, its fal machinery, and its ops HTTP server. */
export async function startWorkerService(
  spec: WorkerServiceSpec,
  config: WorkerRuntimeConfig,
  log: Logger,
): Promise<WorkerService> {
  const handlers: Record<string, JobHandler> = {
    [JOBS.poll]: pollRequest,
    [JOBS.cancel]: cancelRequest,
    ...spec.handlers,
  };
  const missing = EXPECTED_JOBS[spec.queue].filter((name) => !handlers[name]);
  if (missing.length > 0) throw new Error(`${spec.service}: no handler for job(s) ${missing.join(', ')}`);

  const registry = createMetricsRegistry(spec.service);
  const fal = FalCaller.create(createFal(config.fal), () => metrics, config.worker.falCallTimeoutMs, {
    resetTimeoutMs: config.worker.breakerResetMs,
  });
  const metrics = workerMetrics(registry, () => fal.breakers);

  // A worker needs a blocking connection (no retry limit); producers get their own.
  const workerConnection = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const producerConnection = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  for (const c of [workerConnection, producerConnection]) {
    c.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  }
  const prefix = config.redis.prefix;
  const ownQueue = new Queue(spec.queue, { connection: producerConnection, prefix });
  const events = new Queue(QUEUES.falEvents, { connection: producerConnection, prefix });

  const ctx: WorkerContext = {
    queueName: spec.queue,
    queue: ownQueue,
    worker: () => worker,
    fal,
    events: new EventPublisher(events),
    claims: new SubmissionClaims(producerConnection, prefix, spec.queue),
    metrics,
    log,
    webhookBaseUrl: config.webhook.publicBaseUrl,
    prices: config.prices,
    breakerDelayMs: config.worker.breakerResetMs,
    adoptWindowMs: config.worker.adoptWindowMs,
  };

  // Three parameters: BullMQ then gives each job an AbortSignal, which `worker.cancelAllJobs()` aborts at shutdown.
  const processJob = async (job: Job, token: string | undefined, signal: AbortSignal | undefined) => {
    const handler = handlers[job.name];
    if (!handler) throw new UnrecoverableError(`${spec.service} has no handler for job ${job.name}`);
    try {
      return await handler(job, token!, { ...ctx, fal: fal.forJob(signal) });
    } catch (err) {
      // A payload that does not parse will not parse on a retry either: fail now, not after 8 attempts.
      if (err instanceof ZodError) {
        throw new UnrecoverableError(`invalid ${job.name} payload: ${z.prettifyError(err)}`);
      }
      throw err;
    }
  };

  const worker = new Worker(spec.queue, processJob, {
    connection: workerConnection,
    prefix,
    concurrency: config.worker.concurrency,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    settings: {
      // Called once per retry, so the retry's one log line and its count live here.
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error, job?: MinimalJob) => {
        const failure = classifyFalError(err);
        const delay = retryDelay(attemptsMade, type === FAL_BACKOFF_TYPE ? failure.retryAfterMs : undefined);
        metrics.retries.inc({
          queue: spec.queue,
          reason: failure.status ? String(failure.status) : failure.kind,
        });
        log.warn(
          {
            jobId: job?.id,
            falRequestId: falRequestIdOf(job),
            attempt: attemptsMade,
            delayMs: delay,
            kind: failure.kind,
            status: failure.status,
          },
          `will retry after backoff: ${failure.message}`,
        );
        return delay;
      },
    },
  });
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => void reportFinalFailure(job, err, ctx));
  worker.on('completed', (job) =>
    metrics.jobs.inc({ queue: spec.queue, job: job.name, outcome: 'completed' }),
  );

  const app = express();
  app.disable('x-powered-by');
  app.use(
    opsRouter(registry, {
      redis: async () => ((await producerConnection.ping()) === 'PONG' ? true : 'no PONG'),
      worker: async () => (worker.isRunning() ? true : 'BullMQ worker is not running'),
    }),
  );
  const server: Server = app.listen(config.port, '0.0.0.0');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const port = (server.address() as AddressInfo).port;
  log.info({ queue: spec.queue, port, concurrency: config.worker.concurrency }, `${spec.service} started`);

  return {
    port,
    registry,
    worker,
    async close() {
      server.close();
      // worker.close() stops fetching and waits for active jobs with no deadline of its own; calling it again
      // returns the same promise. So: wait out the grace period, then abort the jobs' fal calls, which release
      // their jobs (handleFalFailure), and give that a moment before letting go of Redis regardless.
      const closed = worker.close().then(
        () => true,
        () => true,
      );
      const within = (ms: number) => Promise.race([closed, delay(ms, false, { ref: false })]);
      if (!(await within(config.worker.shutdownGraceMs))) {
        log.warn(
          'active jobs did not finish in the grace period; aborting their fal calls and releasing them',
        );
        worker.cancelAllJobs('shutdown');
        if (!(await within(RELEASE_WAIT_MS))) {
          log.warn('some jobs are still active; their locks lapse and another worker takes them');
        }
      }
      fal.breakers.shutdown();
      await Promise.allSettled([ownQueue.close(), events.close()]);
      workerConnection.disconnect();
      producerConnection.disconnect();
      server.closeAllConnections();
    },
  };
}

/** After the grace period, how long released jobs get to reach Redis before the connections are dropped. */
const RELEASE_WAIT_MS = 1_000;

/** The fal request a job is about: a poll's or cancel's own, or the one a submit recorded. */
function falRequestIdOf(job: MinimalJob | undefined): string | undefined {
  const data = job?.data as { falRequestId?: string; submission?: { falRequestId?: string } } | undefined;
  return data?.falRequestId ?? data?.submission?.falRequestId;
}
