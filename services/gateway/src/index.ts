import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { QUEUES, createMetricsRegistry, falEvent, type Logger } from '@aisha/shared';
import { seedApiKeys } from './api-keys';
import { gatewayMetrics } from './gateway-metrics';
import { createHttpApp } from './http-app';
import { ensureDatabase, migrate } from './db/database';
import { JobEnqueuer } from './enqueue-jobs';
import type { GatewayConfig } from './gateway-env';
import { recordEvent, type RecorderDeps } from './recorder/record-event';
import { sweep } from './sweep';

export { gatewaySections, sweepEnv, type GatewayConfig } from './gateway-env';
export { ensureDatabase, migrate } from './db/database';
export { seedApiKeys } from './api-keys';

const SWEEP_QUEUE = 'gateway-sweep';
export const SWEEP_JOB_RETENTION = {
  removeOnComplete: { age: 3600, count: 100 },
  removeOnFail: { age: 24 * 3600, count: 100 },
};

export interface Gateway {
  url: string;
  pool: pg.Pool;
  /** Runs one sweep now (tests; the scheduler runs it every SWEEP_EVERY_S). */
  sweepNow(): Promise<{ requeued: number; polled: number; expired: number }>;
  close(): Promise<void>;
}

/** Creates and migrates the database, then starts the API, the recorder of `fal-events` and the sweep. */
export async function startGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  await ensureDatabase(config.database.url);
  const pool = new pg.Pool({ connectionString: config.database.url, max: 20 });
  pool.on('error', (err) => log.error({ err: err.message }, 'postgres pool error'));
  const applied = await migrate(pool);
  if (applied.length) log.info({ applied }, 'migrations applied');
  await seedApiKeys(pool, config.auth.apiKeys);

  // Producers answer 503 at once while Redis is down instead of queueing commands (reliability-notes.md).
  const producer = new Redis(config.redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  const consumer = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  for (const c of [producer, consumer])
    c.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const prefix = config.redis.prefix;
  const jobs = new JobEnqueuer(producer, prefix, pool, log);
  const registry = createMetricsRegistry('gateway');
  const sweepQueue = new Queue(SWEEP_QUEUE, { connection: producer, prefix });
  const eventsQueue = new Queue(QUEUES.falEvents, { connection: producer, prefix });
  const allQueues = [...Object.values(jobs.queues), eventsQueue, sweepQueue];
  for (const queue of allQueues)
    queue.on('error', (err) => log.warn({ queue: queue.name, err: err.message }, 'queue: redis error'));
  const metrics = gatewayMetrics(registry, pool, allQueues, log, config.sweep.deadlineMs);
  const recorderDeps: RecorderDeps = {
    pool,
    jobs,
    log,
    onTerminal: metrics.onTerminal,
    onDuplicate: metrics.onDuplicate,
  };

  const recorder = new Worker(
    QUEUES.falEvents,
    (job) => recordEvent(falEvent.parse(job.data), recorderDeps),
    {
      connection: consumer,
      prefix,
      concurrency: config.limits.recorderConcurrency,
    },
  );
  // Connection errors while Redis restarts: BullMQ reconnects by itself; they belong in our log, not the console.
  recorder.on('error', (err) => log.warn({ err: err.message }, 'recorder: redis error'));
  recorder.on('failed', (job, err) =>
    log.error({ jobId: job?.id, err: err.message }, 'recorder failed an event'),
  );
  // One sweep at a time across every replica: BullMQ schedules the next run as soon as one starts, and a worker's
  // own concurrency only limits its process. Finished runs are trimmed, or one job a run would pile up forever.
  await sweepQueue.setGlobalConcurrency(1);
  await sweepQueue.upsertJobScheduler(
    'sweep',
    { every: config.sweep.everyMs },
    { name: 'sweep', opts: SWEEP_JOB_RETENTION },
  );
  const runSweep = () => sweep(config.sweep, { ...recorderDeps, jobs, pool, log });
  const sweeperConnection = consumer.duplicate();
  const sweeper = new Worker(SWEEP_QUEUE, runSweep, {
    connection: sweeperConnection,
    prefix,
    concurrency: 1,
  });
  sweeper.on('error', (err) => log.warn({ err: err.message }, 'sweep: redis error'));

  const storageOrigins = [new URL(config.fal.restUrl).origin];
  const app = createHttpApp({
    pool,
    jobs,
    training: config.training,
    storageOrigins,
    log,
    registry,
    metrics,
    boardQueues: allQueues,
    adminKey: config.auth.adminKey,
    rateLimit: {
      redis: producer,
      prefix,
      perMinute: config.limits.perMinute,
      authFailuresPerMinute: config.limits.authFailuresPerMinute,
    },
    readiness: {
      postgres: async () => ((await pool.query('SELECT 1')).rowCount === 1 ? true : 'no answer'),
      redis: async () => ((await producer.ping()) === 'PONG' ? true : 'no PONG'),
      // BullMQ workers have failed to resume after a reconnect in some versions: say so, so the gateway is restarted.
      recorder: async () => (recorder.isRunning() ? true : 'the fal-events recorder is not running'),
      sweep: async () => (sweeper.isRunning() ? true : 'the sweep worker is not running'),
    },
  });

  const server: Server = app.listen(config.port, '0.0.0.0');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'gateway listening');

  return {
    url: `http://127.0.0.1:${port}`,
    pool,
    sweepNow: runSweep,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await Promise.allSettled([recorder.close(), sweeper.close()]);
      await Promise.allSettled([sweepQueue.close(), eventsQueue.close(), jobs.close()]);
      for (const c of [producer, consumer, sweeperConnection]) c.disconnect();
      await pool.end();
    },
  };
}
