import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import {
  QUEUES,
  createMetricsRegistry,
  falEvent,
  opsRouter,
  problem,
  sendProblem,
  type Logger,
} from '@aisha/shared';
import { ADMIN_PATH, adminBoard } from './admin-board';
import { requireApiKey, seedApiKeys } from './api-keys';
import { avatarRoutes } from './api/avatar-routes';
import { generationRoutes } from './api/generation-routes';
import { trainingRoutes } from './api/training-routes';
import { ensureDatabase, migrate } from './db/database';
import { JobEnqueuer } from './enqueue-jobs';
import type { GatewayConfig } from './gateway-env';
import { recordEvent, type RecorderDeps } from './recorder/record-event';
import { sweep } from './sweep';

export { gatewaySections, sweepEnv, type GatewayConfig } from './gateway-env';
export { ensureDatabase, migrate } from './db/database';

const SWEEP_QUEUE = 'gateway-sweep';

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
  const recorderDeps: RecorderDeps = { pool, jobs, log };

  const recorder = new Worker(
    QUEUES.falEvents,
    (job) => recordEvent(falEvent.parse(job.data), recorderDeps),
    {
      connection: consumer,
      prefix,
      concurrency: 8,
    },
  );
  recorder.on('failed', (job, err) =>
    log.error({ jobId: job?.id, err: err.message }, 'recorder failed an event'),
  );
  const sweepQueue = new Queue(SWEEP_QUEUE, { connection: producer, prefix });
  await sweepQueue.upsertJobScheduler('sweep', { every: config.sweep.everyMs }, { name: 'sweep' });
  const runSweep = () => sweep(config.sweep, { ...recorderDeps, jobs, pool, log });
  const sweeperConnection = consumer.duplicate();
  const sweeper = new Worker(SWEEP_QUEUE, runSweep, {
    connection: sweeperConnection,
    prefix,
    concurrency: 1,
  });

  const storageOrigins = [new URL(config.fal.restUrl).origin];
  const app = express();
  app.disable('x-powered-by');
  app.use(
    opsRouter(registry, {
      postgres: async () => ((await pool.query('SELECT 1')).rowCount === 1 ? true : 'no answer'),
      redis: async () => ((await producer.ping()) === 'PONG' ? true : 'no PONG'),
    }),
  );
  const eventsQueue = new Queue(QUEUES.falEvents, { connection: producer, prefix });
  app.use(
    ADMIN_PATH,
    ...adminBoard([...Object.values(jobs.queues), eventsQueue, sweepQueue], config.auth.adminKey),
  );
  app.use('/v1', express.json({ limit: '1mb' }), requireApiKey(pool));
  const deps = { pool, jobs, training: config.training, storageOrigins, log };
  app.use(avatarRoutes(deps), trainingRoutes(deps), generationRoutes(deps));
  app.use((_req, res) => sendProblem(res, problem(404, 'no such route')));
  app.use(
    (err: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
      if (err.type === 'entity.parse.failed')
        return sendProblem(res, problem(400, `malformed JSON: ${err.message}`));
      if (err.type === 'entity.too.large')
        return sendProblem(res, problem(413, 'request body is larger than 1 MB'));
      log.error({ err: err.message }, 'request failed');
      sendProblem(res, problem(500, 'internal error; the request id is in the logs'));
    },
  );

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
