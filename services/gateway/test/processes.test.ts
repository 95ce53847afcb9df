import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { createLogger, loadConfig } from '@aisha/shared';
import { startFalSim } from '@aisha/fal-sim';
import { freePort, uniquePrefix, waitFor } from '@aisha/testkit';
import { gatewaySections, startGateway, type Gateway } from '@aisha/gateway';
import { uploadPhotos } from './system-harness';

// The production shape: webhook-ingest and the three workers as their own processes (`node dist/main.js`, built by
// `npx tsc -b`), fal-sim and the gateway in this process; the test speaks HTTP to the gateway only.
const ROOT = path.resolve(__dirname, '../../..');
const SERVICES = [
  ['webhook-ingest', 'INGEST_PORT'],
  ['portrait-worker', 'PORTRAIT_WORKER_PORT'],
  ['pro-worker', 'PRO_WORKER_PORT'],
  ['ultra-worker', 'ULTRA_WORKER_PORT'],
] as const;
const KEY = 'proc-key-0001';

let sim: Awaited<ReturnType<typeof startFalSim>>;
let gateway: Gateway;
const children: ChildProcess[] = [];
const database = `aisha_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 30, generationMs: 0, webhookRetryBaseMs: 100 });
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async ([, v]) => [v, await freePort()])));
  const env: Record<string, string> = {
    REDIS_URL: 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: uniquePrefix(),
    DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
    FAL_KEY: sim.key,
    FAL_QUEUE_URL: sim.queueUrl,
    FAL_REST_URL: sim.restUrl,
    FAL_JWKS_URL: sim.jwksUrl,
    PUBLIC_WEBHOOK_BASE_URL: `http://127.0.0.1:${ports.INGEST_PORT}`,
    API_KEYS: `acme:${KEY}`,
    ADMIN_KEY: 'admin-key-for-tests',
    GATEWAY_PORT: '0',
    LOG_LEVEL: 'warn',
    ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
  };
  gateway = await startGateway(loadConfig(gatewaySections, env), createLogger('test', 'silent'));
  for (const [service, portVariable] of SERVICES) {
    const child = spawn('node', [path.join(ROOT, 'services', service, 'dist', 'main.js')], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${ports[portVariable]}/healthz`).catch(() => null))?.ok,
      15_000,
      `${service} to listen`,
    );
  }
});

afterAll(async () => {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
  await gateway?.close();
  await sim?.stop();
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
});

async function api(method: string, route: string, body?: unknown) {
  const res = await fetch(`${gateway.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

it('trains a portrait avatar and generates an image with it, the services running as processes', async () => {
  const zip = await uploadPhotos(sim.connection, 4);
  const avatar = await api('POST', '/v1/avatars', {
    name: 'p',
    training_type: 'portrait',
    images_data_url: zip,
  });
  expect(avatar.status).toBe(201);
  const training = await api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  expect(training.status).toBe(202);
  const ready = await waitFor(
    async () => {
      const a = await api('GET', `/v1/avatars/${avatar.body.id}`);
      return a.body.status === 'ready' || a.body.status === 'failed' ? a.body : undefined;
    },
    30_000,
    'the avatar to be trained',
  );
  expect(ready).toMatchObject({ status: 'ready', model: { kind: 'lora' } });

  const generation = await api('POST', '/v1/generations', {
    avatar_id: avatar.body.id,
    prompt: 'a portrait',
  });
  expect(generation.status).toBe(202);
  const done = await waitFor(
    async () => {
      const g = await api('GET', `/v1/generations/${generation.body.id}`);
      return ['completed', 'failed'].includes(g.body.status) ? g.body : undefined;
    },
    30_000,
    'the generation to finish',
  );
  expect(done.status).toBe('completed');
  expect((await fetch(done.images[0].url)).status).toBe(200);
  // The completion came by a signed webhook through webhook-ingest, not only by polling.
  expect(sim.stats().webhooks.delivered).toBeGreaterThanOrEqual(2);
});
