import { classifyFalError, createFal, FAL_ENDPOINTS, FalHttpError } from '@aisha/shared';
import { samplePhotoArchive } from '@aisha/cli';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { startWebhookReceiver, waitFor } from '@aisha/testkit';

// These tests drive fal-sim with the real @fal-ai/client, through our wrapper, as the workers do.
let sim: FalSim;
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 50, generationMs: 0, webhookRetryBaseMs: 10 });
  receiver = await startWebhookReceiver();
});
afterAll(async () => {
  await sim.stop();
  await receiver.stop();
});
beforeEach(() => sim.reset());

async function uploadPhotos(fal: ReturnType<typeof createFal>) {
  return fal.upload(new Blob([Buffer.from(samplePhotoArchive(4))], { type: 'application/zip' }));
}

describe('fal-sim queue API, through the real client', () => {
  it('uploads a zip, trains on its file URL, reports progress, completes and calls the webhook', async () => {
    const fal = createFal(sim.connection);
    const zipUrl = await uploadPhotos(fal);
    expect(zipUrl.startsWith(`${sim.url}/files/`)).toBe(true);

    const { requestId } = await fal.submit(
      'fal-ai/flux-lora-portrait-trainer',
      { images_data_url: zipUrl, steps: 500, trigger_phrase: 'TOK' },
      { webhookUrl: receiver.url },
    );
    const statuses = new Set<string>();
    const final = await waitFor(async () => {
      const status = await fal.status('fal-ai/flux-lora-portrait-trainer', requestId);
      statuses.add(status.status);
      return status.status === 'COMPLETED' ? status : undefined;
    });
    expect(final.status).toBe('COMPLETED');
    expect(final.logs.map((l) => l.message)).toEqual(expect.arrayContaining(['Training progress: 50%']));

    const output = await fal.result('fal-ai/flux-lora-portrait-trainer', requestId);
    const parsed = FAL_ENDPOINTS['fal-ai/flux-lora-portrait-trainer'].output.parse(output);
    const lora = await fetch(parsed.diffusers_lora_file.url);
    expect(lora.status).toBe(200);
    expect((await lora.arrayBuffer()).byteLength).toBeGreaterThan(8);

    const delivery = await waitFor(() => receiver.deliveries.find((d) => d.body.request_id === requestId));
    expect(delivery.body).toMatchObject({ status: 'OK', payload: output });
    expect(sim.requests()[0]!.input).toMatchObject({ steps: 500, images_data_url: zipUrl });
  });

  it('answers status and result under the owner/alias of a sub-path endpoint', async () => {
    const fal = createFal(sim.connection);
    const input = {
      prompt: 'TOK portrait',
      finetune_id: 'ft-1',
      finetune_strength: 1.1,
      aspect_ratio: '16:9',
    };
    const { requestId } = await fal.submit('fal-ai/flux-pro/v1.1-ultra-finetuned', input);
    await waitFor(
      async () =>
        (await fal.status('fal-ai/flux-pro/v1.1-ultra-finetuned', requestId)).status === 'COMPLETED',
    );
    const output = FAL_ENDPOINTS['fal-ai/flux-pro/v1.1-ultra-finetuned'].output.parse(
      await fal.result('fal-ai/flux-pro/v1.1-ultra-finetuned', requestId),
    );
    const image = await fetch(output.images[0]!.url);
    const bytes = Buffer.from(await image.arrayBuffer());
    expect(image.headers.get('content-type')).toBe('image/jpeg');
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8]);
    expect(output.images[0]!.width / output.images[0]!.height).toBeCloseTo(16 / 9, 1);
  });

  it('fails a training whose archive holds no images, as fal does: COMPLETED, then an error result', async () => {
    const fal = createFal(sim.connection);
    const notAZip = await fal.upload(new Blob(['hello'], { type: 'application/zip' }));
    const { requestId } = await fal.submit(
      'fal-ai/flux-pro-trainer',
      { data_url: notAZip, finetune_comment: 'x' },
      { webhookUrl: receiver.url },
    );
    await waitFor(
      async () => (await fal.status('fal-ai/flux-pro-trainer', requestId)).status === 'COMPLETED',
    );
    const err = await fal.result('fal-ai/flux-pro-trainer', requestId).catch((e: unknown) => e);
    // A 422 result is what the real client turns into a ValidationError naming the field.
    expect((err as Error).name).toBe('ValidationError');
    expect(classifyFalError(err)).toMatchObject({ kind: 'validation', fields: ['data_url'] });
    expect(classifyFalError(err).message).toContain('data_url: the archive is not a valid zip file');
    const delivery = await waitFor(() => receiver.deliveries.find((d) => d.body.request_id === requestId));
    expect(delivery.body).toMatchObject({ status: 'ERROR', error: 'Invalid status code: 422' });
  });

  it('cancels a queued request, and refuses to cancel a finished one', async () => {
    const slow = await startFalSim({ queueMs: 60_000 });
    try {
      const fal = createFal(slow.connection);
      const { requestId } = await fal.submit('fal-ai/flux-lora', { prompt: 'x' });
      await fal.cancel('fal-ai/flux-lora', requestId);
      expect((await fal.status('fal-ai/flux-lora', requestId)).status).toBe('COMPLETED');
      expect(slow.requests()[0]).toMatchObject({ cancelled: true, cancelRequests: 1 });
      const again = await fal.cancel('fal-ai/flux-lora', requestId).catch((e: unknown) => e);
      expect(classifyFalError(again)).toMatchObject({ kind: 'client', status: 400 });
    } finally {
      await slow.stop();
    }
  });

  it('rejects a wrong key with 401, which classifies as an auth error', async () => {
    const fal = createFal({ ...sim.connection, key: 'not-a-key' });
    const err = await fal.submit('fal-ai/flux-lora', { prompt: 'x' }).catch((e: unknown) => e);
    expect(classifyFalError(err)).toMatchObject({ kind: 'auth', status: 401 });
    expect(sim.requests()).toHaveLength(0);
  });

  it("rejects the seed guide's input with a 422 naming the fields", async () => {
    const fal = createFal(sim.connection);
    const err = await fal
      .submit('fal-ai/flux-pro-trainer', { images_data_url: 'https://x.test/a.zip', auto_captioning: true })
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe('ValidationError');
    expect(classifyFalError(err).fields).toEqual(
      expect.arrayContaining(['data_url', 'finetune_comment', 'images_data_url', 'auto_captioning']),
    );
    expect(sim.requests()).toHaveLength(0);
  });

  it('answers a 429 with Retry-After, once: the client does not retry it', async () => {
    sim.setFaults({ rate429: 1, retryAfterS: 2 });
    const fal = createFal(sim.connection);
    const err = await fal.submit('fal-ai/flux-lora', { prompt: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FalHttpError);
    expect(classifyFalError(err)).toMatchObject({ kind: 'rate_limit', retryAfterMs: 2_000 });
    expect(sim.stats().faults.http429).toBe(1);
    expect(sim.requests()).toHaveLength(0);
  });
});
