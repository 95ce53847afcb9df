import { createHash, createPublicKey, verify } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFal } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startWebhookReceiver, waitFor, type Delivery } from '@aisha/testkit';

// Verifies a delivery the way a receiver must, knowing only the JWKS URL and fal's published scheme.
async function verifyWithJwks(jwksUrl: string, delivery: Delivery): Promise<boolean> {
  const { keys } = (await (await fetch(jwksUrl)).json()) as {
    keys: Array<{ kty: string; crv: string; x: string }>;
  };
  const h = delivery.headers;
  const message = [
    h['x-fal-webhook-request-id'],
    h['x-fal-webhook-user-id'],
    h['x-fal-webhook-timestamp'],
    createHash('sha256').update(delivery.raw).digest('hex'),
  ].join('\n');
  const signature = Buffer.from(String(h['x-fal-webhook-signature']), 'hex');
  return keys.some((jwk) =>
    verify(
      null,
      Buffer.from(message),
      createPublicKey({ key: { ...jwk, x: jwk.x.replace(/=+$/, '') }, format: 'jwk' }),
      signature,
    ),
  );
}

let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0, webhookRetryBaseMs: 1 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

describe('fal-sim webhooks', () => {
  it('signs deliveries with a key from its JWKS, and a tampered body fails verification', async () => {
    const receiver = await startWebhookReceiver();
    try {
      const fal = createFal(sim.connection);
      const { requestId } = await fal.submit(
        'fal-ai/flux-lora',
        { prompt: 'x' },
        { webhookUrl: receiver.url },
      );
      const delivery = await waitFor(() => receiver.deliveries[0]);
      expect(delivery.headers['x-fal-webhook-request-id']).toBe(requestId);
      expect(Math.abs(Number(delivery.headers['x-fal-webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(
        300,
      );
      expect(delivery.body).toMatchObject({ request_id: requestId, status: 'OK' });
      expect(await verifyWithJwks(sim.jwksUrl, delivery)).toBe(true);

      const tampered = Buffer.from(delivery.raw.toString().replace('"OK"', '"ERROR"'));
      expect(await verifyWithJwks(sim.jwksUrl, { ...delivery, raw: tampered })).toBe(false);
    } finally {
      await receiver.stop();
    }
  });

  it('retries a failed delivery until the receiver answers 2xx', async () => {
    let answers = 0;
    const receiver = await startWebhookReceiver(() => (++answers <= 3 ? 503 : 200));
    try {
      const fal = createFal(sim.connection);
      await fal.submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: receiver.url });
      await waitFor(() => sim.stats().webhooks.delivered === 1);
      expect(receiver.deliveries).toHaveLength(4);
      expect(sim.stats().webhooks).toMatchObject({ attempts: 4, failedAttempts: 3, delivered: 1 });
      // Every retry carries the same body and a valid signature.
      expect(new Set(receiver.deliveries.map((d) => d.raw.toString())).size).toBe(1);
      for (const delivery of receiver.deliveries)
        expect(await verifyWithJwks(sim.jwksUrl, delivery)).toBe(true);
    } finally {
      await receiver.stop();
    }
  });

  it('counts a receiver that does not answer within the timeout as a failure, and tries again', async () => {
    const impatient = await startFalSim({
      queueMs: 0,
      generationMs: 0,
      webhookRetryBaseMs: 1,
      webhookTimeoutMs: 200,
    });
    // The first delivery is held unanswered; the second is answered 200.
    let calls = 0;
    const receiver = http.createServer((req, res) => {
      req.resume();
      if (++calls > 1) res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await createFal(impatient.connection).submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: url });
      await waitFor(() => impatient.stats().webhooks.delivered === 1);
      expect(impatient.stats().webhooks).toMatchObject({ attempts: 2, failedAttempts: 1, delivered: 1 });
    } finally {
      await impatient.stop();
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('ends deliveries in flight on reset: no retry reaches the receiver, nothing counts in the fresh stats', async () => {
    // The receiver holds every delivery unanswered, so the first is still in flight when the reset comes.
    let posts = 0;
    const receiver = http.createServer((req) => {
      posts += 1;
      req.resume();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await createFal(sim.connection).submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: url });
      await waitFor(() => posts === 1);
      sim.reset();
      // Absence needs a wait: 200 ms is many retry delays at a 1 ms base (the leak retried within a few ms).
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(posts).toBe(1);
      expect(sim.stats().webhooks).toEqual({ attempts: 0, delivered: 0, failedAttempts: 0, abandoned: 0 });
    } finally {
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('gives up after 10 tries', async () => {
    const receiver = await startWebhookReceiver(() => 500);
    try {
      const fal = createFal(sim.connection);
      await fal.submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: receiver.url });
      // 1 ms doubling: the tenth try comes about half a second after the first (15 s doubling at fal: about 2 h).
      await waitFor(() => sim.stats().webhooks.abandoned === 1, 30_000);
      expect(receiver.deliveries).toHaveLength(10);
    } finally {
      await receiver.stop();
    }
  });

  it('mis-signs deliveries when asked to', async () => {
    const receiver = await startWebhookReceiver();
    try {
      sim.setFaults({ webhookBadSignatureRate: 1 });
      const fal = createFal(sim.connection);
      await fal.submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: receiver.url });
      const delivery = await waitFor(() => receiver.deliveries[0]);
      expect(await verifyWithJwks(sim.jwksUrl, delivery)).toBe(false);
    } finally {
      await receiver.stop();
    }
  });
});

describe('fal-sim webhook faults', () => {
  it('sends a duplicated webhook twice, both copies signed and identical', async () => {
    const receiver = await startWebhookReceiver();
    try {
      sim.setFaults({ webhookDuplicateRate: 1 });
      const fal = createFal(sim.connection);
      await fal.submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: receiver.url });
      await waitFor(() => receiver.deliveries.length === 2);
      const [first, second] = receiver.deliveries as [Delivery, Delivery];
      expect(first.raw.equals(second.raw)).toBe(true);
      expect(await verifyWithJwks(sim.jwksUrl, first)).toBe(true);
      expect(await verifyWithJwks(sim.jwksUrl, second)).toBe(true);
      expect(sim.stats().faults.webhooksDuplicated).toBe(1);
    } finally {
      await receiver.stop();
    }
  });

  it('reorders webhooks: with a scripted draw, the first request to end is delivered last', async () => {
    // Each delivery waits random() × webhookDelayMs; the first draw is long, the second none.
    const draws = [0.9, 0];
    const scripted = await startFalSim({
      queueMs: 0,
      trainingMs: 0,
      generationMs: 0,
      faults: { webhookDelayMs: 1_000, webhookReorder: true },
      random: () => draws.shift() ?? 0,
    });
    const receiver = await startWebhookReceiver();
    try {
      const fal = createFal(scripted.connection);
      const first = await fal.submit('fal-ai/flux-lora', { prompt: 'a' }, { webhookUrl: receiver.url });
      await waitFor(() => scripted.requests()[0]!.status === 'COMPLETED');
      const second = await fal.submit('fal-ai/flux-lora', { prompt: 'b' }, { webhookUrl: receiver.url });
      await waitFor(() => receiver.deliveries.length === 2);
      expect(receiver.deliveries.map((d) => d.body.request_id)).toEqual([second.requestId, first.requestId]);
    } finally {
      await receiver.stop();
      await scripted.stop();
    }
  });
});
