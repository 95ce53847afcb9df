import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLogger, loadConfig } from '@aisha/shared';
import { uniquePrefix, waitFor } from '@aisha/testkit';
import { SWEEP_JOB_RETENTION, gatewaySections, startGateway, type Gateway } from '@aisha/gateway';

// Two gateway replicas on one database and one queue prefix, sweeping every second.
const database = `aisha_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const prefix = uniquePrefix();
const env = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  QUEUE_PREFIX: prefix,
  DATABASE_URL: `postgres://postgres@127.0.0.1:5432/${database}`,
  FAL_KEY: 'sim-key-unused',
  API_KEYS: 'acme:replica-key-01',
  ADMIN_KEY: 'admin-key-for-tests',
  GATEWAY_PORT: '0',
  LOG_LEVEL: 'silent',
  SWEEP_EVERY_S: '1',
};
const gateways: Gateway[] = [];
let connection: Redis;
let sweepQueue: Queue;

beforeAll(async () => {
  const config = loadConfig(gatewaySections, env);
  gateways.push(await startGateway(config, createLogger('test', 'silent')));
  gateways.push(await startGateway(config, createLogger('test', 'silent')));
  connection = new Redis(env.REDIS_URL, { maxRetriesPerRequest: null });
  sweepQueue = new Queue('gateway-sweep', { connection, prefix });
});

afterAll(async () => {
  await sweepQueue.obliterate({ force: true }).catch(() => undefined);
  await sweepQueue.close();
  connection.disconnect();
  await Promise.all(gateways.map((g) => g.close()));
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
});

it('runs one sweep at a time across replicas, even when a sweep outlasts its interval', async () => {
  expect(await sweepQueue.getGlobalConcurrency()).toBe(1);
  const db = gateways[0]!.pool;
  await db.query(
    "INSERT INTO avatars (id, tenant_id, name, training_type) VALUES ('av_r', 'acme', 'r', 'portrait')",
  );
  await db.query(
    `INSERT INTO trainings (id, tenant_id, avatar_id, training_type, preset, images_data_url, created_at)
     VALUES ('tr_r', 'acme', 'av_r', 'portrait', 'fast', 'https://example.test/p.zip', now() - interval '1 day')`,
  );
  // Hold the overdue row: the sweep that tries to fail it waits on the lock, far longer than its 1 s interval.
  const holder = await db.connect();
  let mostActive = 0;
  try {
    await holder.query('BEGIN');
    await holder.query("SELECT 1 FROM trainings WHERE id = 'tr_r' FOR UPDATE");
    await waitFor(async () => (await sweepQueue.getActiveCount()) === 1, 10_000, 'a sweep to start');
    // Meanwhile the next runs fall due; the idle replica must not start one.
    const until = Date.now() + 3_500;
    while (Date.now() < until) {
      mostActive = Math.max(mostActive, await sweepQueue.getActiveCount());
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await sweepQueue.getJobCountByTypes('waiting', 'prioritized', 'delayed')).toBeGreaterThanOrEqual(
      1,
    );
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }
  expect(mostActive).toBe(1);
  await waitFor(
    async () =>
      (await db.query("SELECT status FROM trainings WHERE id = 'tr_r'")).rows[0].status === 'failed',
    10_000,
    'the held sweep to fail the row',
  );
  const { rows } = await db.query("SELECT count(*)::int AS n FROM transitions WHERE row_id = 'tr_r'");
  expect(rows[0].n).toBe(1);

  // Finished runs carry their retention, so BullMQ trims them instead of keeping one job per run forever.
  const done = await waitFor(
    async () => (await sweepQueue.getCompleted(0, 0))[0],
    10_000,
    'a finished sweep',
  );
  expect(done.opts).toMatchObject(SWEEP_JOB_RETENTION);
});
