import { createFal } from '@aisha/shared';
import { uploadSamplePhotos } from '@aisha/cli';
import { launchSystem, SERVICE_NAMES, waitFor, type RunningSystem } from '@aisha/testkit';

// The system as production runs it: fal-sim and the five services, each its own process, driven only over HTTP.
let system: RunningSystem;

beforeAll(async () => {
  system = await launchSystem({
    sim: { FAL_SIM_QUEUE_MS: '20', FAL_SIM_TRAINING_MS: '100', FAL_SIM_GENERATION_MS: '20' },
    env: { LOG_LEVEL: 'warn' },
  });
}, 60_000);

afterAll(async () => {
  await system?.stop();
});

async function uploadPhotos() {
  const sim = system.urls['fal-sim'];
  return uploadSamplePhotos(createFal({ key: 'fal-sim-key', queueUrl: sim, restUrl: sim }), 4);
}

/** A portrait avatar, trained with the `fast` preset, ready to generate with. */
async function readyPortraitAvatar(name: string): Promise<string> {
  const avatar = await system.api('POST', '/v1/avatars', {
    name,
    training_type: 'portrait',
    images_data_url: await uploadPhotos(),
  });
  await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  await untilTerminal(`/v1/avatars/${avatar.body.id}`, ['ready', 'failed']);
  return avatar.body.id;
}

async function untilTerminal(route: string, terminal: string[]) {
  return waitFor(
    async () => {
      const { body } = await system.api('GET', route);
      return terminal.includes(body.status) ? body : undefined;
    },
    30_000,
    `${route} to end`,
  );
}

it.each([
  ['portrait', { kind: 'lora' }, 'fal-ai/flux-lora'],
  ['style', { kind: 'finetune' }, 'fal-ai/flux-pro/v1.1-ultra-finetuned'],
] as const)(
  'trains a %s avatar and generates with it, the whole way through HTTP',
  async (trainingType, model, generator) => {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: `e2e ${trainingType}`,
      training_type: trainingType,
      images_data_url: await uploadPhotos(),
    });
    expect(avatar.status).toBe(201);
    const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
    expect(training.status).toBe(202);
    expect(await untilTerminal(`/v1/avatars/${avatar.body.id}`, ['ready', 'failed'])).toMatchObject({
      status: 'ready',
      model,
    });

    const generation = await system.api('POST', '/v1/generations', {
      avatar_id: avatar.body.id,
      prompt: 'a portrait in soft light',
      aspect_ratio: '3:4',
    });
    expect(generation.status).toBe(202);
    const done = await untilTerminal(`/v1/generations/${generation.body.id}`, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    const image = await fetch(done.images[0].url);
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toMatch(/^image\//);

    // fal saw the generation on the endpoint that fits the avatar's model.
    const requests: { endpoint: string }[] = await system.sim('requests');
    expect(requests.map((r) => r.endpoint)).toContain(generator);
  },
  60_000,
);

it('serves metrics and health on every service, and Bull Board only with the admin key', async () => {
  for (const name of SERVICE_NAMES) {
    expect((await fetch(`${system.urls[name]}/healthz`)).status).toBe(200);
    const metrics = await fetch(`${system.urls[name]}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('process_resident_memory_bytes');
  }
  const board = `${system.urls.gateway}/admin/queues`;
  expect((await fetch(board)).status).toBe(401);
  expect((await fetch(board, { headers: { authorization: `Bearer ${system.adminKey}` } })).status).toBe(200);
});

it('loses nothing when a worker is killed and restarted between two requests', async () => {
  await system.kill('ultra-worker');
  const avatarId = await readyPortraitAvatar('e2e crash');
  // Accepted while no generation worker runs: the job waits in Redis.
  const generation = await system.api('POST', '/v1/generations', { avatar_id: avatarId, prompt: 'x' });
  expect(generation.status).toBe(202);
  await system.start('ultra-worker');
  expect((await untilTerminal(`/v1/generations/${generation.body.id}`, ['completed', 'failed'])).status).toBe(
    'completed',
  );
}, 60_000);

it('adopts the request of a submit whose answer was lost, rather than paying for a second', async () => {
  const avatarId = await readyPortraitAvatar('e2e lost answer');

  // fal accepts the submit, but its answer never reaches the worker (a reset connection).
  await system.sim('faults', { lostAnswerRate: 1 });
  const generation = await system.api('POST', '/v1/generations', {
    avatar_id: avatarId,
    prompt: 'lost',
  });
  const requestsFor = async () =>
    ((await system.sim('requests')) as { webhook_url: string | null }[]).filter((r) =>
      r.webhook_url?.includes(`id=${generation.body.id}&`),
    );
  await waitFor(async () => (await requestsFor()).length > 0, 15_000, 'fal to accept the submit');
  await system.sim('faults', { lostAnswerRate: 0 });

  const done = await untilTerminal(`/v1/generations/${generation.body.id}`, ['completed', 'failed']);
  expect(done.status).toBe('completed');
  expect(await requestsFor()).toHaveLength(1);
}, 60_000);

it('stops every service cleanly on SIGTERM (exit code 0)', async () => {
  const codes = await system.stop();
  expect(codes).toEqual(Object.fromEntries(SERVICE_NAMES.map((name) => [name, 0])));
  system = undefined as unknown as RunningSystem;
}, 30_000);
