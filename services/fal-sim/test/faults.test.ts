import { createFal, classifyFalError } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startWebhookReceiver, waitFor } from '@aisha/testkit';

let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0, webhookRetryBaseMs: 10 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

describe('fault injection', () => {
  it('injects 429s and dropped webhooks at about the configured rates over 200 requests', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const set = await fetch(`${sim.url}/_sim/faults`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rate429: 0.3, webhookDropRate: 0.2 }),
      });
      expect(set.status).toBe(200);
      const fal = createFal(sim.connection);
      let rateLimited = 0;
      for (let i = 0; i < 200; i++) {
        await fal
          .submit('fal-ai/flux-lora', { prompt: `p${i}` }, { webhookUrl: receiver.url })
          .catch((err: unknown) => {
            expect(classifyFalError(err).kind).toBe('rate_limit');
            rateLimited += 1;
          });
      }
      const stats = (await (await fetch(`${sim.url}/_sim/stats`)).json()) as {
        accepted: number;
        faults: { http429: number; webhooksDropped: number };
      };
      expect(stats.faults.http429).toBe(rateLimited);
      expect(stats.accepted).toBe(200 - rateLimited);
      // Binomial(200, 0.3): mean 60, sd 6.5; these bounds fail about once in a million runs.
      expect(rateLimited).toBeGreaterThan(25);
      expect(rateLimited).toBeLessThan(95);
      await waitFor(
        () => receiver.deliveries.length + stats.faults.webhooksDropped >= stats.accepted || undefined,
      );
      const dropped = (await (await fetch(`${sim.url}/_sim/stats`)).json()).faults.webhooksDropped as number;
      expect(receiver.deliveries.length + dropped).toBe(stats.accepted);
      const dropRate = dropped / stats.accepted;
      expect(dropRate).toBeGreaterThan(0.05);
      expect(dropRate).toBeLessThan(0.4);
    } finally {
      await receiver.stop();
    }
  });

  it('answers 503 and hangs on demand, and refuses a malformed fault setting', async () => {
    const fal = createFal(sim.connection);
    sim.setFaults({ rate5xx: 1 });
    expect(
      classifyFalError(await fal.submit('fal-ai/flux-lora', { prompt: 'x' }).catch((e: unknown) => e)),
    ).toMatchObject({
      kind: 'transient',
      status: 503,
    });
    sim.setFaults({ rate5xx: 0, rateTimeout: 1 });
    const hung = await fal
      .submit('fal-ai/flux-lora', { prompt: 'x' }, { signal: AbortSignal.timeout(200) })
      .catch((e: unknown) => e);
    expect(classifyFalError(hung)).toMatchObject({
      kind: 'transient',
      message: 'fal unreachable: timed out',
    });

    const bad = await fetch(`${sim.url}/_sim/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rate429: 2 }),
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await bad.json()).errors[0].path).toBe('rate429');
  });

  it('fails runs when asked to, with an ERROR webhook and an error result', async () => {
    const receiver = await startWebhookReceiver();
    try {
      sim.setFaults({ runFailureRate: 1 });
      const fal = createFal(sim.connection);
      const { requestId } = await fal.submit(
        'fal-ai/flux-lora',
        { prompt: 'x' },
        { webhookUrl: receiver.url },
      );
      const delivery = await waitFor(() => receiver.deliveries[0]);
      expect(delivery.body).toMatchObject({ status: 'ERROR', error: 'Invalid status code: 500' });
      const err = await fal.result('fal-ai/flux-lora', requestId).catch((e: unknown) => e);
      expect(classifyFalError(err).message).toContain('simulated runner error');
    } finally {
      await receiver.stop();
    }
  });
});
