import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '@aisha/shared';
import { startDedicatedRedis, waitFor } from '@aisha/testkit';
import { startSystem, type System } from './system-harness';

// A Redis of the test's own, stopped mid-test: the API keeps answering from PostgreSQL, never hangs, and the sweep
// enqueues what could not be enqueued once Redis is back.
let redis: Awaited<ReturnType<typeof startDedicatedRedis>>;
let system: System;
beforeAll(async () => {
  redis = await startDedicatedRedis();
  system = await startSystem({ workers: false, env: { REDIS_URL: redis.url, SWEEP_EVERY_S: '3600' } });
});
afterAll(async () => {
  await redis.start().catch(() => undefined);
  await system.stop();
  await redis.destroy();
});

describe('while Redis is down', () => {
  it('keeps the row, answers 503 where a job is required, and the sweep enqueues once Redis is back', async () => {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 'o',
      training_type: 'portrait',
      images_data_url: 'https://example.test/photos.zip',
    });
    await redis.stop();

    const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
    expect(training.status).toBe(202);
    const { rows } = await system.db.query('SELECT status, enqueue_failed FROM trainings WHERE id = $1', [
      training.body.id,
    ]);
    expect(rows[0]).toEqual({ status: 'queued', enqueue_failed: true });

    const cancel = await system.api('POST', `/v1/trainings/${training.body.id}/cancel`);
    expect(cancel.status).toBe(503);
    expect(cancel.type).toContain('application/problem+json');
    expect((await fetch(`${system.gateway.url}/readyz`)).status).toBe(503);
    expect((await system.api('GET', `/v1/trainings/${training.body.id}`)).status).toBe(200);

    await redis.start();
    await waitFor(async () => (await fetch(`${system.gateway.url}/readyz`)).status === 200, 20_000);
    await system.gateway.sweepNow();
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(QUEUES.trainPortrait, { connection, prefix: system.prefix });
    try {
      expect(await queue.getJob(training.body.id)).toBeDefined();
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });
});
