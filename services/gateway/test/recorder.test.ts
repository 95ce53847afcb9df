import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EVENT_JOB_OPTIONS, JOBS, QUEUES, falEventJobId, type FalEvent } from '@aisha/shared';
import { waitFor } from '@aisha/testkit';
import { startSystem, type System } from './system-harness';

// Events pushed straight onto fal-events, in the orders and repetitions that at-least-once delivery produces.
let system: System;
let connection: Redis;
let events: Queue;
let portraitQueue: Queue;
beforeAll(async () => {
  system = await startSystem({ workers: false });
  connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  events = new Queue(QUEUES.falEvents, { connection, prefix: system.prefix });
  portraitQueue = new Queue(QUEUES.trainPortrait, { connection, prefix: system.prefix });
});
afterAll(async () => {
  await Promise.all([events.close(), portraitQueue.close()]);
  connection.disconnect();
  await system.stop();
});

const at = () => new Date().toISOString();
async function emit(event: Omit<FalEvent, 'at'>, unique = '') {
  const full = { ...event, at: at() } as FalEvent;
  const jobId = falEventJobId(full);
  await events.add(JOBS.falEvent, full, {
    ...EVENT_JOB_OPTIONS,
    jobId: jobId ? `${jobId}${unique}` : undefined,
  });
}

async function newTraining() {
  const avatar = await system.api('POST', '/v1/avatars', {
    name: 'r',
    training_type: 'portrait',
    images_data_url: 'https://example.test/photos.zip',
  });
  const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  return { avatarId: avatar.body.id as string, trainingId: training.body.id as string };
}

const terminalTransitions = async (id: string) =>
  (
    await system.db.query(
      "SELECT to_status FROM transitions WHERE row_id = $1 AND to_status IN ('completed','failed','cancelled')",
      [id],
    )
  ).rows;
const loraOutput = (n: string) => ({
  diffusers_lora_file: { url: `https://v3.fal.media/files/${n}/lora.safetensors` },
  config_file: { url: `https://v3.fal.media/files/${n}/config.json` },
});

describe('the recorder', () => {
  it('parks a completion that arrives before its submitted, then completes the row once bound', async () => {
    const { avatarId, trainingId } = await newTraining();
    const rid = `rid-${trainingId}`;
    await emit({
      type: 'completed',
      entity: 'training',
      id: 'ignored-hint',
      falRequestId: rid,
      source: 'webhook',
      output: loraOutput('a'),
    });
    await waitFor(
      async () =>
        (await system.db.query('SELECT 1 FROM parked_events WHERE fal_request_id = $1', [rid])).rowCount ===
        1,
    );
    await submitted('training', trainingId, rid, undefined, '-x');
    const avatar = await waitFor(async () => {
      const a = await system.api('GET', `/v1/avatars/${avatarId}`);
      return a.body.status === 'ready' ? a.body : undefined;
    });
    expect(avatar.model).toEqual({ kind: 'lora', url: 'https://v3.fal.media/files/a/lora.safetensors' });
    expect(await terminalTransitions(trainingId)).toHaveLength(1);
  });

  it('applies duplicates and late events once: one terminal transition, no step back', async () => {
    const { trainingId } = await newTraining();
    const rid = `rid2-${trainingId}`;
    await submitted('training', trainingId, rid, undefined, '-y');
    for (const suffix of ['-1', '-2', '-3']) {
      await emit(
        {
          type: 'completed',
          entity: 'training',
          falRequestId: rid,
          source: 'webhook',
          output: loraOutput('b'),
        },
        suffix,
      );
    }
    await emit(
      {
        type: 'failed',
        entity: 'training',
        falRequestId: rid,
        source: 'poll',
        error: { message: 'late failure' },
      },
      '-4',
    );
    await emit({
      type: 'progress',
      entity: 'training',
      falRequestId: rid,
      source: 'poll',
      progress: { percent: 10 },
    });
    await waitFor(
      async () =>
        (await events.getJobCounts('waiting', 'active')).waiting === 0 &&
        (await events.getJobCounts('active')).active === 0,
    );
    const training = await system.api('GET', `/v1/trainings/${trainingId}`);
    expect(training.body).toMatchObject({ status: 'completed', progress: 100, error: null });
    expect(await terminalTransitions(trainingId)).toEqual([{ to_status: 'completed' }]);
  });

  it("fails the avatar with fal's message when its only training fails", async () => {
    const { avatarId, trainingId } = await newTraining();
    const rid = `rid3-${trainingId}`;
    await submitted('training', trainingId, rid, undefined, '-z');
    await emit({
      type: 'failed',
      entity: 'training',
      falRequestId: rid,
      source: 'webhook',
      error: { message: 'Invalid status code: 422: images_data_url: no images' },
    });
    const avatar = await waitFor(async () => {
      const a = await system.api('GET', `/v1/avatars/${avatarId}`);
      return a.body.status === 'failed' ? a.body : undefined;
    });
    expect(avatar.error).toBe('Invalid status code: 422: images_data_url: no images');
  });

  it("a completion for A's request carrying B's id as a hint completes A and leaves B unchanged", async () => {
    const a = await newTraining();
    const b = await newTraining();
    await submitted('training', a.trainingId, `ridA-${a.trainingId}`);
    await submitted('training', b.trainingId, `ridB-${b.trainingId}`);
    await rowStatus('trainings', b.trainingId, 'submitted');
    const before = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [b.trainingId])).rows[0];
    await emit({
      type: 'completed',
      entity: 'training',
      id: b.trainingId,
      falRequestId: `ridA-${a.trainingId}`,
      source: 'webhook',
      output: loraOutput('hint'),
    });
    await rowStatus('trainings', a.trainingId, 'completed');
    const after = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [b.trainingId])).rows[0];
    expect(after).toEqual(before);
    expect((await system.api('GET', `/v1/avatars/${b.avatarId}`)).body.status).toBe('training');
  });

  it('keeps the first binding on a second submission, cancels the other request at fal and counts it', async () => {
    const { trainingId } = await newTraining();
    await submitted('training', trainingId, `first-${trainingId}`);
    await rowStatus('trainings', trainingId, 'submitted');
    await submitted('training', trainingId, `second-${trainingId}`);
    const cancel = await waitFor(async () =>
      (await portraitQueue.getJobs(['waiting'])).find(
        (j) => j.name === JOBS.cancel && j.data.falRequestId === `second-${trainingId}`,
      ),
    );
    expect(cancel.data).toMatchObject({ entity: 'training', id: trainingId, reason: 'duplicate' });
    const { rows } = await system.db.query('SELECT fal_request_id FROM trainings WHERE id = $1', [
      trainingId,
    ]);
    expect(rows[0].fal_request_id).toBe(`first-${trainingId}`);
    const metrics = await (await fetch(`${system.gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_duplicate_submissions_total\{[^}]*entity="training"[^}]*\} [1-9]/);
  });

  it('never binds a request to a row that already ended: it is counted and cancelled at fal', async () => {
    const { trainingId } = await newTraining();
    await emit({ type: 'cancelled', entity: 'training', id: trainingId, source: 'worker' });
    await rowStatus('trainings', trainingId, 'cancelled');
    const before = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [trainingId])).rows[0];
    // The submit that was in flight when the row was cancelled reaches fal and reports in.
    await submitted('training', trainingId, `late-${trainingId}`);
    const cancel = await waitFor(async () =>
      (await portraitQueue.getJobs(['waiting'])).find(
        (j) => j.name === JOBS.cancel && j.data.falRequestId === `late-${trainingId}`,
      ),
    );
    expect(cancel.data).toMatchObject({ entity: 'training', id: trainingId, reason: 'duplicate' });
    const after = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [trainingId])).rows[0];
    expect(after).toEqual(before);
    expect(after.fal_request_id).toBeNull();
    const { rows } = await system.db.query(
      'SELECT row_id FROM duplicate_requests WHERE fal_request_id = $1',
      [`late-${trainingId}`],
    );
    expect(rows).toEqual([{ row_id: trainingId }]);
  });

  it('a redelivered submitted applies a completion still parked after the binding committed', async () => {
    const { avatarId, trainingId } = await newTraining();
    const rid = `stranded-${trainingId}`;
    await submitted('training', trainingId, rid);
    await rowStatus('trainings', trainingId, 'submitted');
    // The state a crash leaves between the binding's commit and applyParked: bound, and the completion parked.
    const parked = {
      type: 'completed',
      entity: 'training',
      falRequestId: rid,
      source: 'webhook',
      output: loraOutput('stranded'),
      at: at(),
    };
    await system.db.query('INSERT INTO parked_events (fal_request_id, type, event) VALUES ($1, $2, $3)', [
      rid,
      'completed',
      JSON.stringify(parked),
    ]);
    await submitted('training', trainingId, rid, undefined, '-redelivered');
    await rowStatus('trainings', trainingId, 'completed');
    expect((await system.api('GET', `/v1/avatars/${avatarId}`)).body.model).toEqual({
      kind: 'lora',
      url: 'https://v3.fal.media/files/stranded/lora.safetensors',
    });
    expect(
      (await system.db.query('SELECT 1 FROM parked_events WHERE fal_request_id = $1', [rid])).rowCount,
    ).toBe(0);
  });

  it('a ready avatar being retrained still generates with the model it has', async () => {
    const avatarId = await readyAvatar('re');
    const retraining = await system.api('POST', `/v1/avatars/${avatarId}/trainings`, { preset: 'fast' });
    expect(retraining.status).toBe(202);
    expect((await system.api('GET', `/v1/avatars/${avatarId}`)).body.status).toBe('training');
    const generation = await system.api('POST', '/v1/generations', { avatar_id: avatarId, prompt: 'TOK' });
    expect(generation.status).toBe(202);
    const { rows } = await system.db.query('SELECT model, training_type FROM generations WHERE id = $1', [
      generation.body.id,
    ]);
    expect(rows[0]).toEqual({
      model: { kind: 'lora', url: 'https://v3.fal.media/files/re/lora.safetensors' },
      training_type: 'portrait',
    });
  });

  it("a worker's failure before any fal request fails the row by its trusted id", async () => {
    const { avatarId, trainingId } = await newTraining();
    await emit({
      type: 'failed',
      entity: 'training',
      id: trainingId,
      source: 'worker',
      error: { message: 'fal refused the key (401)' },
    });
    await rowStatus('trainings', trainingId, 'failed');
    const avatar = await system.api('GET', `/v1/avatars/${avatarId}`);
    expect(avatar.body).toMatchObject({ status: 'failed', error: 'fal refused the key (401)' });
  });

  it('a webhook without a request id cannot fail a row by its URL id alone', async () => {
    const { trainingId } = await newTraining();
    await emit({
      type: 'failed',
      entity: 'training',
      id: trainingId,
      source: 'webhook',
      error: { message: 'x' },
    });
    await waitFor(async () => (await events.getJob(`evt:failed:row-${trainingId}`))?.isCompleted());
    const training = await system.api('GET', `/v1/trainings/${trainingId}`);
    expect(training.body).toMatchObject({ status: 'queued', error: null });
    expect(await terminalTransitions(trainingId)).toEqual([]);
  });

  it('records a generation: cancelled rows and completed images', async () => {
    const avatarId = await readyAvatar('g');
    const generation = await system.api('POST', '/v1/generations', { avatar_id: avatarId, prompt: 'TOK' });
    expect(generation.status).toBe(202);
    const id = generation.body.id as string;
    await submitted('generation', id, `rid-gen-${id}`, 'fal-ai/flux-lora');
    const image = {
      url: 'https://v3.fal.media/files/g/1.png',
      width: 1024,
      height: 1024,
      content_type: 'image/png',
    };
    await emit({
      type: 'completed',
      falRequestId: `rid-gen-${id}`,
      source: 'poll',
      output: { images: [image], seed: 7, prompt: 'TOK', timings: {}, has_nsfw_concepts: [false] },
    });
    await rowStatus('generations', id, 'completed');
    expect((await system.api('GET', `/v1/generations/${id}`)).body.images).toEqual([image]);

    const other = await system.api('POST', '/v1/generations', { avatar_id: avatarId, prompt: 'TOK again' });
    await emit({ type: 'cancelled', entity: 'generation', id: other.body.id, source: 'worker' });
    await rowStatus('generations', other.body.id, 'cancelled');
    expect((await system.api('POST', `/v1/generations/${other.body.id}/cancel`)).status).toBe(409);
  });
});

// An avatar whose training completed through the recorder, with the LoRA of `name`.
async function readyAvatar(name: string): Promise<string> {
  const { avatarId, trainingId } = await newTraining();
  await submitted('training', trainingId, `rid-${name}-${trainingId}`);
  await emit({
    type: 'completed',
    falRequestId: `rid-${name}-${trainingId}`,
    source: 'webhook',
    output: loraOutput(name),
  });
  await waitFor(async () => (await system.api('GET', `/v1/avatars/${avatarId}`)).body.status === 'ready');
  return avatarId;
}

async function submitted(
  entity: 'training' | 'generation',
  id: string,
  falRequestId: string,
  endpoint: FalEvent['endpoint'] = 'fal-ai/flux-lora-portrait-trainer',
  unique = '',
) {
  await emit({ type: 'submitted', entity, id, falRequestId, endpoint, source: 'worker' }, unique);
}

async function rowStatus(table: 'trainings' | 'generations', id: string, status: string) {
  await waitFor(
    async () =>
      (await system.db.query(`SELECT status FROM ${table} WHERE id = $1`, [id])).rows[0]?.status === status,
    10_000,
    `${id} to be ${status}`,
  );
}
