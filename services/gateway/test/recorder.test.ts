import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { EVENT_JOB_OPTIONS, JOBS, QUEUES, falEventJobId, type FalEvent } from '@aisha/shared';
import { waitFor } from '@aisha/testkit';
import { startSystem, type System } from './system-harness';

// Events pushed straight onto fal-events, in the orders and repetitions that at-least-once delivery produces.
let system: System;
let connection: Redis;
let events: Queue;
beforeAll(async () => {
  system = await startSystem({ workers: false });
  connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  events = new Queue(QUEUES.falEvents, { connection, prefix: system.prefix });
});
afterAll(async () => {
  await events.close();
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
    await emit(
      {
        type: 'submitted',
        entity: 'training',
        id: trainingId,
        falRequestId: rid,
        endpoint: 'fal-ai/flux-lora-portrait-trainer',
        source: 'worker',
      },
      '-x',
    );
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
    await emit(
      {
        type: 'submitted',
        entity: 'training',
        id: trainingId,
        falRequestId: rid,
        endpoint: 'fal-ai/flux-lora-portrait-trainer',
        source: 'worker',
      },
      '-y',
    );
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
    await emit(
      {
        type: 'submitted',
        entity: 'training',
        id: trainingId,
        falRequestId: rid,
        endpoint: 'fal-ai/flux-lora-portrait-trainer',
        source: 'worker',
      },
      '-z',
    );
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
});
