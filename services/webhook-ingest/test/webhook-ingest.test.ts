import { generateKeyPairSync, sign, createHash } from 'node:crypto';
import { QUEUES, createFal } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startWebhookReceiver, waitFor, type Delivery } from '@aisha/testkit';
import { post, startIngest } from './ingest-harness';

let sim: FalSim;
let ingest: Awaited<ReturnType<typeof startIngest>>;
let clock = Date.now();

beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0, webhookRetryBaseMs: 50 });
  ingest = await startIngest({ jwksUrl: sim.jwksUrl, now: () => clock });
});
afterAll(async () => {
  await ingest.stop();
  await sim.stop();
});
beforeEach(() => {
  clock = Date.now();
});

/** A real, signed delivery from fal-sim, captured before it reaches webhook-ingest. */
async function captureDelivery(faults: Parameters<FalSim['setFaults']>[0] = {}): Promise<Delivery> {
  const receiver = await startWebhookReceiver();
  try {
    sim.setFaults({ runFailureRate: 0, ...faults });
    const fal = createFal(sim.connection);
    const { requestId } = await fal.submit('fal-ai/flux-lora', { prompt: 'x' }, { webhookUrl: receiver.url });
    return await waitFor(() => receiver.deliveries.find((d) => d.body.request_id === requestId));
  } finally {
    await receiver.stop();
  }
}

const headersOf = (d: Delivery) =>
  Object.fromEntries(Object.entries(d.headers).filter(([k]) => k.startsWith('x-fal-webhook-'))) as Record<
    string,
    string
  >;

async function eventsFor(requestId: string) {
  return (await ingest.events()).filter((e) => e.falRequestId === requestId);
}

describe('webhook-ingest', () => {
  it('turns a webhook from fal-sim into exactly one completed event', async () => {
    const fal = createFal(sim.connection);
    const { requestId } = await fal.submit(
      'fal-ai/flux-lora',
      { prompt: 'x' },
      { webhookUrl: ingest.webhookUrl('entity=generation&id=gen_42') },
    );
    const [event] = await waitFor(async () => {
      const found = await eventsFor(requestId);
      return found.length > 0 ? found : undefined;
    });
    expect(event).toMatchObject({
      type: 'completed',
      entity: 'generation',
      id: 'gen_42',
      falRequestId: requestId,
      source: 'webhook',
    });
    expect((event!.output as { images: unknown[] }).images).toHaveLength(1);
    expect(await eventsFor(requestId)).toHaveLength(1);
  });

  it('answers 200 to the same delivery five times at once, and emits one event', async () => {
    const delivery = await captureDelivery();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => post(ingest.webhookUrl(), headersOf(delivery), delivery.raw)),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.body.status).sort()).toEqual([
      'accepted',
      'duplicate',
      'duplicate',
      'duplicate',
      'duplicate',
    ]);
    expect(await eventsFor(delivery.body.request_id)).toHaveLength(1);
  });

  it('refuses tampered, foreign, unsigned, stale and replayed deliveries with 401 and emits nothing', async () => {
    const delivery = await captureDelivery();
    const headers = headersOf(delivery);
    const tampered = Buffer.from(delivery.raw.toString().replace('"OK"', '"ERROR"'));

    const stranger = generateKeyPairSync('ed25519');
    const digest = createHash('sha256').update(delivery.raw).digest('hex');
    const message = `${headers['x-fal-webhook-request-id']}\n${headers['x-fal-webhook-user-id']}\n${headers['x-fal-webhook-timestamp']}\n${digest}`;
    const foreign = {
      ...headers,
      'x-fal-webhook-signature': sign(null, Buffer.from(message), stranger.privateKey).toString('hex'),
    };
    const { ['x-fal-webhook-signature']: _dropped, ...unsigned } = headers;

    const attempts = [
      await post(ingest.webhookUrl(), headers, tampered),
      await post(ingest.webhookUrl(), foreign, delivery.raw),
      await post(ingest.webhookUrl(), unsigned, delivery.raw),
    ];
    // The same, genuine delivery replayed 301 s after it was signed.
    clock = Number(headers['x-fal-webhook-timestamp']) * 1000 + 301_000;
    attempts.push(await post(ingest.webhookUrl(), headers, delivery.raw));
    // And one whose timestamp is 301 s old when it arrives.
    const old = Date.now() - 301_000;
    clock = Date.now();
    const oldHeaders = sim.signWebhook(delivery.body.request_id, delivery.raw, { now: old });
    attempts.push(await post(ingest.webhookUrl(), oldHeaders, delivery.raw));

    for (const attempt of attempts) {
      expect(attempt.status).toBe(401);
      expect(attempt.type).toContain('application/problem+json');
    }
    expect(attempts[3]!.body.detail).toContain('more than 300 s from now');
    expect(await eventsFor(delivery.body.request_id)).toHaveLength(0);

    // The genuine delivery, in time, still goes through.
    clock = Date.now();
    expect((await post(ingest.webhookUrl(), headers, delivery.raw)).status).toBe(200);
  });

  it('refuses a signed body whose request id differs from the signed one', async () => {
    const delivery = await captureDelivery();
    const body = Buffer.from(JSON.stringify({ ...delivery.body, request_id: 'someone-else' }));
    const headers = sim.signWebhook(delivery.body.request_id, body);
    const answer = await post(ingest.webhookUrl(), headers, body);
    expect(answer.status).toBe(401);
    expect(await eventsFor('someone-else')).toHaveLength(0);
  });

  it("turns an ERROR webhook into a failed event carrying fal's message", async () => {
    const delivery = await captureDelivery({ runFailureRate: 1 });
    expect(
      (await post(ingest.webhookUrl('entity=training&id=tr_9'), headersOf(delivery), delivery.raw)).status,
    ).toBe(200);
    const [event] = await eventsFor(delivery.body.request_id);
    expect(event).toMatchObject({ type: 'failed', entity: 'training', id: 'tr_9' });
    expect(event!.error!.message).toBe(
      'Invalid status code: 500: fal-ai/flux-lora failed: simulated runner error',
    );
  });

  it('turns a null payload with payload_error into a failed event', async () => {
    const body = Buffer.from(
      JSON.stringify({
        request_id: 'req-null',
        gateway_request_id: 'g',
        status: 'OK',
        payload: null,
        payload_error: 'Output too large',
      }),
    );
    expect((await post(ingest.webhookUrl(), sim.signWebhook('req-null', body), body)).status).toBe(200);
    const [event] = await eventsFor('req-null');
    expect(event).toMatchObject({
      type: 'failed',
      error: { message: 'fal could not return the output: Output too large' },
    });
  });

  it('answers 400 to a verified body that is not fal’s shape', async () => {
    const body = Buffer.from(JSON.stringify({ request_id: 'req-odd', state: 'done' }));
    const answer = await post(ingest.webhookUrl(), sim.signWebhook('req-odd', body), body);
    expect(answer.status).toBe(400);
    expect(await eventsFor('req-odd')).toHaveLength(0);
  });

  it('accepts a 3 MB payload and refuses 6 MB with 413', async () => {
    const big = (id: string, mb: number) =>
      Buffer.from(
        JSON.stringify({
          request_id: id,
          status: 'OK',
          payload: { images: [], seed: 1, blob: 'x'.repeat(mb * 1024 * 1024) },
        }),
      );
    const three = big('req-3mb', 3);
    expect((await post(ingest.webhookUrl(), sim.signWebhook('req-3mb', three), three)).status).toBe(200);
    const six = big('req-6mb', 6);
    const answer = await post(ingest.webhookUrl(), sim.signWebhook('req-6mb', six), six);
    expect(answer.status).toBe(413);
    expect(answer.type).toContain('application/problem+json');
  });

  it('takes the seed guide’s callback path', async () => {
    const delivery = await captureDelivery();
    const url = `${ingest.url}/api/avatar/status_update?training_type=ultra`;
    expect((await post(url, headersOf(delivery), delivery.raw)).status).toBe(200);
    expect(await eventsFor(delivery.body.request_id)).toEqual([
      expect.objectContaining({ entity: 'generation' }),
    ]);
  });

  it('answers a copy that arrives while the first fails with 503, and releases the claim for fal’s retry', async () => {
    const own = await startIngest({ jwksUrl: sim.jwksUrl });
    // Recording fails inside the claim: BullMQ's add script meets a `meta` key of the wrong type (WRONGTYPE).
    const metaKey = `${own.prefix}:${QUEUES.falEvents}:meta`;
    try {
      const delivery = await captureDelivery();
      await own.connection.set(metaKey, 'not a hash');
      const copies = await Promise.all(
        Array.from({ length: 3 }, () => post(own.webhookUrl(), headersOf(delivery), delivery.raw)),
      );
      expect(copies.map((c) => c.status)).toEqual([503, 503, 503]);
      await own.connection.del(metaKey);
      // fal's retry: accepted, not taken for a duplicate of the failed copy.
      const retry = await post(own.webhookUrl(), headersOf(delivery), delivery.raw);
      expect(retry).toMatchObject({ status: 200, body: { status: 'accepted' } });
      expect((await own.events()).filter((e) => e.falRequestId === delivery.body.request_id)).toHaveLength(1);
    } finally {
      await own.connection.del(metaKey);
      await own.stop();
    }
  });

  it('counts deliveries by outcome in /metrics and reports ready', async () => {
    const counts = async () => {
      const text = await (await fetch(`${ingest.url}/metrics`)).text();
      const value = (outcome: string) =>
        Number(
          new RegExp(
            `webhook_deliveries_total\\{outcome="${outcome}",service="webhook-ingest"\\} (\\d+)`,
          ).exec(text)?.[1],
        );
      return { accepted: value('accepted'), bad: value('bad_signature'), stale: value('stale'), text };
    };
    const before = await counts();
    const body = Buffer.from(
      JSON.stringify({ request_id: 'req-metrics', status: 'OK', payload: { images: [], seed: 1 } }),
    );
    const signed = sim.signWebhook('req-metrics', body);
    expect((await post(ingest.webhookUrl(), signed, body)).status).toBe(200);
    const tampered = Buffer.from(body.toString().replace('"seed":1', '"seed":2'));
    expect((await post(ingest.webhookUrl(), signed, tampered)).status).toBe(401);
    const old = sim.signWebhook('req-metrics', body, { now: Date.now() - 301_000 });
    expect((await post(ingest.webhookUrl(), old, body)).status).toBe(401);

    const after = await counts();
    expect(after.accepted - before.accepted).toBe(1);
    expect(after.bad - before.bad).toBe(1);
    expect(after.stale - before.stale).toBe(1);
    expect(after.text).toContain('webhook_signature_verify_seconds_bucket');
    expect((await fetch(`${ingest.url}/readyz`)).status).toBe(200);
  });
});
