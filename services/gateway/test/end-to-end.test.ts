import { waitFor } from '@aisha/testkit';
import { startSystem, uploadPhotos, type System } from './system-harness';

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(() => system.stop());

async function trainUntilReady(trainingType: 'portrait' | 'style') {
  const { api } = system;
  const zip = await uploadPhotos(system.sim.connection, 6);
  const avatar = await api('POST', '/v1/avatars', {
    name: `${trainingType} avatar`,
    training_type: trainingType,
    images_data_url: zip,
  });
  expect(avatar.status).toBe(201);
  expect(avatar.body.status).toBe('draft');
  const training = await api('POST', `/v1/avatars/${avatar.body.id}/trainings`, {
    preset: 'fast',
    trigger_phrase: 'TOK',
  });
  expect(training.status).toBe(202);
  expect(training.body.status).toBe('queued');
  const done = await waitFor(
    async () => {
      const t = await api('GET', `/v1/trainings/${training.body.id}`);
      return ['completed', 'failed', 'cancelled'].includes(t.body.status) ? t.body : undefined;
    },
    20_000,
    'the training to finish',
  );
  expect(done).toMatchObject({ status: 'completed', error: null });
  const ready = await api('GET', `/v1/avatars/${avatar.body.id}`);
  expect(ready.body.status).toBe('ready');
  return { avatar: ready.body, training: done, zip };
}

async function generate(avatarId: string) {
  const generation = await system.api('POST', '/v1/generations', {
    avatar_id: avatarId,
    prompt: 'TOK, studio portrait',
  });
  expect(generation.status).toBe(202);
  return waitFor(
    async () => {
      const g = await system.api('GET', `/v1/generations/${generation.body.id}`);
      return g.body.status === 'completed' || g.body.status === 'failed' ? g.body : undefined;
    },
    20_000,
    'the generation to finish',
  );
}

describe('the whole pipeline, through HTTP only', () => {
  it('trains a portrait avatar into a LoRA and generates with it on FLUX LoRA', async () => {
    const { avatar, zip } = await trainUntilReady('portrait');
    expect(avatar.model.kind).toBe('lora');
    const trainerCall = system.sim
      .requests()
      .find((r) => r.endpoint === 'fal-ai/flux-lora-portrait-trainer')!;
    expect(trainerCall.input).toMatchObject({ images_data_url: zip, steps: 500, trigger_phrase: 'TOK' });

    const generation = await generate(avatar.id);
    expect(generation.status).toBe('completed');
    expect(generation.fal_endpoint).toBe('fal-ai/flux-lora');
    const image = await fetch(generation.images[0].url);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/jpeg');
  });

  it('trains a style avatar into a finetune and generates on FLUX1.1 [pro] ultra fine-tuned', async () => {
    const { avatar, zip } = await trainUntilReady('style');
    expect(avatar.model.kind).toBe('finetune');
    const trainerCall = system.sim.requests().find((r) => r.endpoint === 'fal-ai/flux-pro-trainer')!;
    expect(trainerCall.input).toMatchObject({ data_url: zip, iterations: 200 });

    const generation = await generate(avatar.id);
    expect(generation).toMatchObject({
      status: 'completed',
      fal_endpoint: 'fal-ai/flux-pro/v1.1-ultra-finetuned',
    });
    const call = system.sim.requests().find((r) => r.requestId === generation.fal_request_id)!;
    expect(call.input).toMatchObject({ finetune_id: avatar.model.id, finetune_strength: 1.1 });
  });

  it('records each row reaching its terminal state exactly once', async () => {
    const { rows } = await system.db.query(
      `SELECT row_id, count(*)::int AS n FROM transitions WHERE to_status IN ('completed', 'failed', 'cancelled') GROUP BY row_id`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });
});
