import { FAL_ENDPOINTS, JOBS, QUEUES } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';
import { trainingJob, withTestWorker } from './worker-harness';

let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

async function submitOne(
  queue: Parameters<typeof withTestWorker>[0],
  name: string,
  data: object,
  id: string,
  env: Record<string, string> = {},
) {
  return withTestWorker(queue, sim, env, async (worker) => {
    await worker.add(name, data, id);
    const submitted = await waitFor(async () => (await worker.events()).find((e) => e.type === 'submitted'));
    const request = sim.requests().find((r) => r.requestId === submitted.falRequestId)!;
    const job = await worker.job(id);
    return { submitted, request, job };
  });
}

describe('workers submit to fal with the real field names', () => {
  it('portrait: the portrait trainer, with the preset set explicitly and a webhook', async () => {
    const { submitted, request, job } = await submitOne(
      QUEUES.trainPortrait,
      JOBS.submitTraining,
      trainingJob('tr-1'),
      'tr-1',
    );
    expect(submitted).toMatchObject({
      entity: 'training',
      id: 'tr-1',
      endpoint: 'fal-ai/flux-lora-portrait-trainer',
    });
    expect(request.endpoint).toBe('fal-ai/flux-lora-portrait-trainer');
    expect(FAL_ENDPOINTS[request.endpoint].input.safeParse(request.input).success).toBe(true);
    expect(request.input).toMatchObject({ steps: 500, learning_rate: 0.0002, trigger_phrase: 'TOK' });
    // The nonce lets a retry adopt this request should its answer be lost (shared/fal/submission-nonce.ts).
    expect(request.webhookUrl).toMatch(
      /^http:\/\/127\.0\.0\.1:9\/v1\/fal\/webhook\?entity=training&id=tr-1&nonce=[0-9a-f]{32}$/,
    );
    expect(job!.data.submission.falRequestId).toBe(request.requestId);
  });

  it('pro: the pro trainer, with data_url and finetune_comment', async () => {
    const data = trainingJob('tr-2', { trainingType: 'style', preset: 'balanced' });
    const { request } = await submitOne(QUEUES.trainPro, JOBS.submitTraining, data, 'tr-2');
    expect(request.endpoint).toBe('fal-ai/flux-pro-trainer');
    expect(request.input).toMatchObject({
      data_url: 'https://example.test/photos.zip',
      iterations: 500,
      mode: 'style',
    });
    expect(request.input.finetune_comment).toContain('tr-2');
  });

  it('pro: the fast LoRA trainer when PRO_TRAINER_ENDPOINT says so', async () => {
    const data = trainingJob('tr-3', { trainingType: 'style' });
    const env = { PRO_TRAINER_ENDPOINT: 'fal-ai/flux-lora-fast-training' };
    const { request } = await submitOne(QUEUES.trainPro, JOBS.submitTraining, data, 'tr-3', env);
    expect(request.endpoint).toBe('fal-ai/flux-lora-fast-training');
    expect(request.input).toMatchObject({
      images_data_url: 'https://example.test/photos.zip',
      is_style: true,
      steps: 500,
    });
  });

  it('ultra: a finetune avatar generates on FLUX1.1 [pro] ultra fine-tuned', async () => {
    const data = {
      generationId: 'gen-1',
      tenantId: 'dev',
      model: { kind: 'finetune', id: 'ft-9' },
      request: { prompt: 'TOK smiling' },
    };
    const { request, submitted } = await submitOne(QUEUES.generate, JOBS.submitGeneration, data, 'gen-1');
    expect(submitted).toMatchObject({
      entity: 'generation',
      endpoint: 'fal-ai/flux-pro/v1.1-ultra-finetuned',
    });
    expect(request.input).toMatchObject({
      finetune_id: 'ft-9',
      finetune_strength: 1.1,
      safety_tolerance: '2',
    });
  });

  it('ultra: a LoRA avatar generates on FLUX LoRA', async () => {
    const lora = 'https://v3.fal.media/files/x/lora.safetensors';
    const data = {
      generationId: 'gen-2',
      tenantId: 'dev',
      model: { kind: 'lora', url: lora },
      request: { prompt: 'TOK smiling', aspect_ratio: '16:9' },
    };
    const { request } = await submitOne(QUEUES.generate, JOBS.submitGeneration, data, 'gen-2');
    expect(request.endpoint).toBe('fal-ai/flux-lora');
    expect(request.input).toMatchObject({ loras: [{ path: lora, scale: 1 }], image_size: 'landscape_16_9' });
  });

  it('fails a job whose overrides fal would reject, naming the field, without calling fal', async () => {
    await withTestWorker(QUEUES.trainPortrait, sim, {}, async (worker) => {
      await worker.add(JOBS.submitTraining, trainingJob('tr-4', { overrides: { steps: -5 } }), 'tr-4');
      const failed = await waitFor(async () => (await worker.events()).find((e) => e.type === 'failed'));
      expect(failed.error!.message).toMatch(/^invalid fal input: steps: /);
      expect(await (await worker.job('tr-4'))!.getState()).toBe('failed');
      expect(sim.requests()).toHaveLength(0);
    });
  });
});
