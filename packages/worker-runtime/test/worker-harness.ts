import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import {
  JOBS,
  QUEUES,
  WORKER_JOB_OPTIONS,
  createLogger,
  loadConfig,
  portEnv,
  trainingEnv,
  type FalEvent,
  type Logger,
  type WorkerQueueName,
} from '@aisha/shared';
import type { FalSim } from '@aisha/fal-sim';
import { uniquePrefix } from '@aisha/testkit';
import {
  startWorkerService,
  submitGeneration,
  submitTraining,
  workerSections,
  type WorkerService,
} from '@aisha/worker-runtime';

const HANDLERS = {
  [QUEUES.trainPortrait]: (training: ReturnType<typeof loadTraining>) => ({
    [JOBS.submitTraining]: submitTraining('portrait', training),
  }),
  [QUEUES.trainPro]: (training: ReturnType<typeof loadTraining>) => ({
    [JOBS.submitTraining]: submitTraining('style', training),
  }),
  [QUEUES.generate]: () => ({ [JOBS.submitGeneration]: submitGeneration }),
};

function loadTraining(env: Record<string, string>) {
  return loadConfig({ training: trainingEnv }, env).training;
}

/** The environment a worker process is started with against this fal-sim and prefix. */
export function workerEnv(
  sim: FalSim,
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    FAL_KEY: sim.key,
    FAL_QUEUE_URL: sim.queueUrl,
    FAL_REST_URL: sim.restUrl,
    FAL_JWKS_URL: sim.jwksUrl,
    PUBLIC_WEBHOOK_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

// The built workers, run as production runs them: a process of their own (rebuild with `npx tsc -b` first).
const WORKER_MAINS: Record<WorkerQueueName, [main: string, portVariable: string]> = {
  [QUEUES.trainPortrait]: ['portrait-worker', 'PORTRAIT_WORKER_PORT'],
  [QUEUES.trainPro]: ['pro-worker', 'PRO_WORKER_PORT'],
  [QUEUES.generate]: ['ultra-worker', 'ULTRA_WORKER_PORT'],
};

/**
 * A worker service of `queue` as a child process; kill it when done. Its stdout (pino's lines, silent unless the
 * test sets LOG_LEVEL) is piped for the test to read; stderr is kept, for a failing test's sake.
 */
export function startWorkerProcess(
  queue: WorkerQueueName,
  sim: FalSim,
  prefix: string,
  extra: Record<string, string> = {},
): ChildProcess {
  const [service, portVariable] = WORKER_MAINS[queue];
  const main = path.resolve(__dirname, `../../../services/${service}/dist/main.js`);
  return spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH, ...workerEnv(sim, prefix, { [portVariable]: '0', ...extra }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Resolves with the exit code once the process has exited. */
export function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** A worker of `queue` in this process, against fal-sim, on its own prefix; plus a producer and an event reader. */
export async function startTestWorker(
  queue: WorkerQueueName,
  sim: FalSim,
  extraEnv: Record<string, string> = {},
  log: Logger = createLogger('test-worker', 'silent'),
) {
  const prefix = uniquePrefix();
  const env = workerEnv(sim, prefix, extraEnv);
  const config = loadConfig({ ...workerSections, port: portEnv('TEST_PORT', 0) }, env);
  const service: WorkerService = await startWorkerService(
    { service: 'test-worker', queue, handlers: HANDLERS[queue](loadTraining(env)) },
    config,
    log,
  );
  return { service, ...(await queueView(queue, prefix)), prefix };
}

export type TestWorker = Awaited<ReturnType<typeof startTestWorker>>;

/** Runs `run` with a test worker of `queue` (see `startTestWorker`), closed afterwards whatever happens. */
export async function withTestWorker<T>(
  queue: WorkerQueueName,
  sim: FalSim,
  env: Record<string, string>,
  run: (worker: TestWorker) => Promise<T>,
  log?: Logger,
): Promise<T> {
  const worker = await startTestWorker(queue, sim, env, log);
  try {
    return await run(worker);
  } finally {
    await worker.service.close();
    await worker.close();
  }
}

/** A producer on a worker queue, and readers of its jobs and of `fal-events`. */
export async function queueView(queue: WorkerQueueName, prefix: string) {
  const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const jobs = new Queue(queue, { connection, prefix });
  const events = new Queue(QUEUES.falEvents, { connection, prefix });
  return {
    add: (name: string, data: object, jobId: string) =>
      jobs.add(name, data, { ...WORKER_JOB_OPTIONS, jobId }),
    job: (id: string) => jobs.getJob(id) as Promise<Job | undefined>,
    jobs,
    async events(): Promise<FalEvent[]> {
      const found = await events.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
      return found.map((j) => j.data as FalEvent);
    },
    async close() {
      await jobs.obliterate({ force: true }).catch(() => undefined);
      await events.obliterate({ force: true }).catch(() => undefined);
      await jobs.close();
      await events.close();
      connection.disconnect();
    },
  };
}

export function trainingJob(id: string, over: Record<string, unknown> = {}) {
  return {
    trainingId: id,
    tenantId: 'dev',
    avatarId: `av-${id}`,
    trainingType: 'portrait',
    preset: 'fast',
    imagesDataUrl: 'https://example.test/photos.zip',
    triggerPhrase: 'TOK',
    ...over,
  };
}

export async function metricValue(service: WorkerService, name: string, labels: Record<string, string>) {
  const metric = (await service.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value;
}
