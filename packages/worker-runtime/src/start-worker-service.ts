import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Queue, Worker, type Job } from 'bullmq';
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
import { cancelRequest } from './cancel-request';
import { EventPublisher } from './event-publisher';
import { FalCaller } from './fal-caller';
import { pollRequest } from './poll-request';
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
  const fal = new FalCaller(createFal(config.fal), () => metrics, config.worker.falCallTimeoutMs, {
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

  const worker = new Worker(spec.queue, (job: Job, token?: string) => handlers[job.name]!(job, token!, ctx), {
    connection: workerConnection,
    prefix,
    concurrency: config.worker.concurrency,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string, err?: Error) => {
        const delay = retryDelay(
          attemptsMade,
          type === FAL_BACKOFF_TYPE ? classifyFalError(err).retryAfterMs : undefined,
        );
        log.info({ attemptsMade, delayMs: delay, reason: err?.message }, 'retrying with backoff');
        return delay;
      },
    },
  });
  worker.on('error', (err) => log.error({ err: err.message }, 'worker error'));
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
      // worker.close() waits for active jobs with no deadline of its own: race it against our grace period.
      const graceful = worker.close();
      const timedOut = await Promise.race([
        graceful.then(() => false),
        new Promise<boolean>((resolve) =>
          setTimeout(() => resolve(true), config.worker.shutdownGraceMs).unref(),
        ),
      ]);
      if (timedOut) {
        log.warn('active jobs did not finish in time; their locks lapse and another worker takes them');
        await worker.close(true);
      }
      fal.breakers.shutdown();
      await Promise.allSettled([ownQueue.close(), events.close()]);
      workerConnection.disconnect();
      producerConnection.disconnect();
      server.closeAllConnections();
    },
  };
}
