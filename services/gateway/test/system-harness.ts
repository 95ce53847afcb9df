import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { JOBS, QUEUES, createFal, createLogger, loadConfig, portEnv, trainingEnv } from '@aisha/shared';
import { uploadSamplePhotos } from '@aisha/cli';
import { startFalSim, type SimOptionsInput } from '@aisha/fal-sim';
import { createWebhookIngest } from '@aisha/webhook-ingest';
import { startWorkerService, submitGeneration, submitTraining, workerSections } from '@aisha/worker-runtime';
import { uniquePrefix } from '@aisha/testkit';
import { gatewaySections, startGateway } from '@aisha/gateway';

export const KEYS = { acme: 'acme-key-0001', globex: 'globex-key-001' };
const silent = createLogger('test', 'silent');

/**
 * The whole pipeline in this process, each part as it runs in production but for the process boundary:
 * fal-sim, webhook-ingest, the three workers and the gateway, on a database and a queue prefix of the test's own.
 */
export async function startSystem(
  options: { sim?: SimOptionsInput; env?: Record<string, string>; workers?: boolean } = {},
) {
  const sim = await startFalSim({
    queueMs: 0,
    trainingMs: 30,
    generationMs: 0,
    webhookRetryBaseMs: 100,
    ...options.sim,
  });
  const prefix = uniquePrefix();
  const database = `aisha_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const databaseUrl = `postgres://postgres@127.0.0.1:5432/${database}`;
  const ingest = createWebhookIngest({
    redisUrl: 'redis://127.0.0.1:6379',
    prefix,
    jwksUrl: sim.jwksUrl,
    log: silent,
  });
  const ingestPort = await ingest.listen(0, '127.0.0.1');
  const env: Record<string, string> = {
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    DATABASE_URL: databaseUrl,
    FAL_KEY: sim.key,
    FAL_QUEUE_URL: sim.queueUrl,
    FAL_REST_URL: sim.restUrl,
    FAL_JWKS_URL: sim.jwksUrl,
    PUBLIC_WEBHOOK_BASE_URL: `http://127.0.0.1:${ingestPort}`,
    API_KEYS: `acme:${KEYS.acme},globex:${KEYS.globex}`,
    ADMIN_KEY: 'admin-key-for-tests',
    GATEWAY_PORT: '0',
    LOG_LEVEL: 'silent',
    ...options.env,
  };
  const gateway = await startGateway(loadConfig(gatewaySections, env), silent);
  const workerConfig = loadConfig({ ...workerSections, port: portEnv('TEST_WORKER_PORT', 0) }, env);
  const training = loadConfig({ training: trainingEnv }, env).training;
  // Without workers, jobs wait in their queues: tests of the recorder and the sweep drive events by hand.
  const workers =
    options.workers === false
      ? []
      : await Promise.all([
          startWorkerService(
            {
              service: 'portrait-worker',
              queue: QUEUES.trainPortrait,
              handlers: { [JOBS.submitTraining]: submitTraining('portrait', training) },
            },
            workerConfig,
            silent,
          ),
          startWorkerService(
            {
              service: 'pro-worker',
              queue: QUEUES.trainPro,
              handlers: { [JOBS.submitTraining]: submitTraining('style', training) },
            },
            workerConfig,
            silent,
          ),
          startWorkerService(
            {
              service: 'ultra-worker',
              queue: QUEUES.generate,
              handlers: { [JOBS.submitGeneration]: submitGeneration },
            },
            workerConfig,
            silent,
          ),
        ]);

  async function api(
    method: string,
    path: string,
    body?: unknown,
    key: string = KEYS.acme,
    headers: Record<string, string> = {},
  ) {
    const res = await fetch(`${gateway.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      body: text ? JSON.parse(text) : null,
    };
  }

  return {
    sim,
    gateway,
    api,
    db: gateway.pool,
    prefix,
    ingestUrl: (query: string) => `http://127.0.0.1:${ingestPort}/v1/fal/webhook?${query}`,
    async stop() {
      await Promise.allSettled(workers.map((w) => w.close()));
      await ingest.close();
      await gateway.close();
      await sim.stop();
      const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.end();
    },
  };
}
export type System = Awaited<ReturnType<typeof startSystem>>;

/** A zip of sample photos in fal-sim's storage, uploaded through the fal client; its URL. */
export function uploadPhotos(connection: Parameters<typeof createFal>[0], count = 3): Promise<string> {
  return uploadSamplePhotos(createFal(connection), count);
}

/** Sample photos uploaded, a portrait avatar made of them, and its training asked for (preset fast), over HTTP. */
export async function startPortraitTraining(system: System, name: string) {
  const zip = await uploadPhotos(system.sim.connection, 3);
  const avatar = await system.api('POST', '/v1/avatars', {
    name,
    training_type: 'portrait',
    images_data_url: zip,
  });
  const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  return { zip, avatar: avatar.body, training: training.body };
}
