import { createFal } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startDedicatedRedis, waitFor } from '@aisha/testkit';
import { startIngest } from './ingest-harness';

// Runs on a Redis of its own, which it stops and starts: never the machine's shared one.
let sim: FalSim;
let redis: Awaited<ReturnType<typeof startDedicatedRedis>>;
let ingest: Awaited<ReturnType<typeof startIngest>>;

beforeAll(async () => {
  redis = await startDedicatedRedis();
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0, webhookRetryBaseMs: 200 });
  ingest = await startIngest({ jwksUrl: sim.jwksUrl, redisUrl: redis.url });
});
afterAll(async () => {
  await sim.stop();
  await redis.start().catch(() => undefined);
  await ingest.stop();
  await redis.destroy();
});

describe('webhook-ingest while Redis is down', () => {
  it('answers 503 so that fal retries, and records the event once Redis is back', async () => {
    await redis.stop();
    const ready = await fetch(`${ingest.url}/readyz`);
    expect(ready.status).toBe(503);

    const fal = createFal(sim.connection);
    const { requestId } = await fal.submit(
      'fal-ai/flux-lora',
      { prompt: 'x' },
      { webhookUrl: ingest.webhookUrl() },
    );
    // fal-sim's first delivery and its first retries meet a 503.
    await waitFor(() => sim.stats().webhooks.failedAttempts >= 2, 15_000, 'refused deliveries');
    expect(sim.stats().webhooks.delivered).toBe(0);
    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(
      /webhook_deliveries_total\{outcome="unavailable",service="webhook-ingest"\} [1-9]/,
    );

    await redis.start();
    await waitFor(() => sim.stats().webhooks.delivered === 1, 30_000, 'a delivery after Redis is back');
    const events = (await ingest.events()).filter((e) => e.falRequestId === requestId);
    expect(events).toEqual([expect.objectContaining({ type: 'completed', falRequestId: requestId })]);
  });
});
