import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import {
  EVENT_JOB_OPTIONS,
  JOBS,
  QUEUES,
  falEventJobId,
  type FalEndpointId,
  type FalEvent,
} from '@aisha/shared';
import { waitFor } from '@aisha/testkit';
import { startSystem, type System } from './system-harness';

// No workers: jobs stay where the gateway put them, so the test sees exactly what the sweep enqueues.
let system: System;
let connection: Redis;
let portraitQueue: Queue;
let events: Queue;
beforeAll(async () => {
  system = await startSystem({
    workers: false,
    env: { SWEEP_EVERY_S: '3600', POLL_AFTER_S: '{"fal-ai/flux-lora-fast-training": 1800}' },
  });
  connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  portraitQueue = new Queue(QUEUES.trainPortrait, { connection, prefix: system.prefix });
  events = new Queue(QUEUES.falEvents, { connection, prefix: system.prefix });
});
afterAll(async () => {
  await Promise.all([portraitQueue.close(), events.close()]);
  connection.disconnect();
  await system.stop();
});

async function newTraining() {
  const avatar = await system.api('POST', '/v1/avatars', {
    name: 's',
    training_type: 'portrait',
    images_data_url: 'https://example.test/photos.zip',
  });
  const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  expect(training.status).toBe(202);
  return { avatarId: avatar.body.id as string, trainingId: training.body.id as string };
}

const loraOutputOf = (n: string) => ({
  diffusers_lora_file: { url: `https://v3.fal.media/files/${n}/lora.safetensors` },
  config_file: { url: `https://v3.fal.media/files/${n}/config.json` },
});

async function bind(
  trainingId: string,
  falRequestId: string,
  endpoint: FalEndpointId = 'fal-ai/flux-lora-portrait-trainer',
) {
  const event = {
    type: 'submitted',
    entity: 'training',
    id: trainingId,
    falRequestId,
    endpoint,
    source: 'worker',
    at: new Date().toISOString(),
  } as FalEvent;
  await events.add(JOBS.falEvent, event, { ...EVENT_JOB_OPTIONS, jobId: falEventJobId(event) });
  await waitFor(
    async () =>
      (
        await system.db.query('SELECT 1 FROM trainings WHERE id = $1 AND fal_request_id = $2', [
          trainingId,
          falRequestId,
        ])
      ).rowCount === 1,
  );
}

describe('the sweep', () => {
  it('re-enqueues a queued row whose job is missing from Redis', async () => {
    const { trainingId } = await newTraining();
    expect(await portraitQueue.getJob(trainingId)).toBeDefined();
    await portraitQueue.remove(trainingId);
    expect(await portraitQueue.getJob(trainingId)).toBeUndefined();
    // A row younger than the poll delay is left alone: its job may only just have been added.
    await system.gateway.sweepNow();
    expect(await portraitQueue.getJob(trainingId)).toBeUndefined();

    await system.db.query("UPDATE trainings SET updated_at = now() - interval '1 hour' WHERE id = $1", [
      trainingId,
    ]);
    await system.gateway.sweepNow();
    const job = await portraitQueue.getJob(trainingId);
    expect(job?.name).toBe(JOBS.submitTraining);
    expect(job?.data).toMatchObject({ trainingId, trainingType: 'portrait', preset: 'fast' });
  });

  it('re-enqueues a row whose enqueue failed (marked enqueue_failed) at the next sweep', async () => {
    const { trainingId } = await newTraining();
    const fresh = await system.db.query('SELECT enqueue_failed FROM trainings WHERE id = $1', [trainingId]);
    expect(fresh.rows[0].enqueue_failed).toBe(false);
    await portraitQueue.remove(trainingId);
    await system.db.query('UPDATE trainings SET enqueue_failed = true WHERE id = $1', [trainingId]);
    await system.gateway.sweepNow();
    expect(await portraitQueue.getJob(trainingId)).toBeDefined();
    const { rows } = await system.db.query('SELECT enqueue_failed FROM trainings WHERE id = $1', [
      trainingId,
    ]);
    expect(rows[0].enqueue_failed).toBe(false);
  });

  it('retries a job that BullMQ failed on its own (stalled by crashes) while its row stayed queued', async () => {
    const { trainingId } = await newTraining();
    // A worker that fails every job without telling the recorder: what BullMQ does to a job stalled too often.
    const failing = new Worker(
      QUEUES.trainPortrait,
      async () => {
        throw new UnrecoverableError('job stalled more than allowable limit');
      },
      { connection, prefix: system.prefix },
    );
    await waitFor(
      async () => (await portraitQueue.getJob(trainingId))?.isFailed(),
      10_000,
      'the job to fail',
    );
    await failing.close();

    await system.gateway.sweepNow();
    expect(await (await portraitQueue.getJob(trainingId))!.getState()).toBe('failed');
    // Once the row has waited longer than a poll would, the job runs again.
    await system.db.query("UPDATE trainings SET updated_at = now() - interval '1 hour' WHERE id = $1", [
      trainingId,
    ]);
    await system.gateway.sweepNow();
    expect(await (await portraitQueue.getJob(trainingId))!.getState()).toBe('waiting');
  });

  it('puts a poll job on the owning queue for a submitted row with no news', async () => {
    const { trainingId } = await newTraining();
    await bind(trainingId, `rid-poll-${trainingId}`);
    await system.db.query("UPDATE trainings SET updated_at = now() - interval '1 hour' WHERE id = $1", [
      trainingId,
    ]);
    // Two sweeps (or two gateway replicas) while the first poll still waits: still one poll for the row.
    await system.gateway.sweepNow();
    await system.gateway.sweepNow();
    const polls = (await portraitQueue.getJobs(['waiting', 'delayed'])).filter(
      (j) => j.name === JOBS.poll && j.data.id === trainingId,
    );
    expect(polls).toHaveLength(1);
    expect(polls[0]!.id).toBe(`poll:${trainingId}:current`);
    expect(polls[0]!.data).toEqual({
      entity: 'training',
      id: trainingId,
      falRequestId: `rid-poll-${trainingId}`,
      endpoint: 'fal-ai/flux-lora-portrait-trainer',
    });
  });

  it('waits longer before polling an endpoint given its own delay (POLL_AFTER_S)', async () => {
    const proQueue = new Queue(QUEUES.trainPro, { connection, prefix: system.prefix });
    try {
      const { trainingId } = await newTraining();
      // Bound to the LoRA fast trainer, whose runs are given 30 min here, against 1 min for trainings in general.
      await bind(trainingId, `rid-slow-${trainingId}`, 'fal-ai/flux-lora-fast-training');
      const quietFor = async (minutes: number) => {
        await system.db.query(
          'UPDATE trainings SET updated_at = now() - make_interval(mins => $2) WHERE id = $1',
          [trainingId, minutes],
        );
        await system.gateway.sweepNow();
        return (await proQueue.getJobs(['waiting', 'delayed'])).filter(
          (j) => j.name === JOBS.poll && j.data.id === trainingId,
        ).length;
      };
      expect(await quietFor(20)).toBe(0);
      expect(await quietFor(40)).toBe(1);
    } finally {
      await proQueue.close();
    }
  });

  it('fails a row past its deadline with "no result from fal" and cancels its fal request', async () => {
    const { avatarId, trainingId } = await newTraining();
    await bind(trainingId, `rid-late-${trainingId}`);
    await system.db.query("UPDATE trainings SET created_at = now() - interval '1 day' WHERE id = $1", [
      trainingId,
    ]);
    const { expired } = await system.gateway.sweepNow();
    expect(expired).toBe(1);
    const training = await system.api('GET', `/v1/trainings/${trainingId}`);
    expect(training.body.status).toBe('failed');
    expect(training.body.error).toContain('no result from fal');
    expect((await system.api('GET', `/v1/avatars/${avatarId}`)).body.status).toBe('failed');
    const cancels = (await portraitQueue.getJobs(['waiting'])).filter(
      (j) => j.name === JOBS.cancel && j.data.id === trainingId,
    );
    expect(cancels.map((j) => j.data.falRequestId)).toEqual([`rid-late-${trainingId}`]);
    // A second sweep changes nothing: one terminal transition.
    await system.gateway.sweepNow();
    const { rows } = await system.db.query(
      "SELECT to_status, source FROM transitions WHERE row_id = $1 AND to_status = 'failed'",
      [trainingId],
    );
    expect(rows).toEqual([{ to_status: 'failed', source: 'sweep' }]);
  });

  it('takes the submit job of a queued row it fails off the queue, so no billed request starts later', async () => {
    const { trainingId } = await newTraining();
    expect(await (await portraitQueue.getJob(trainingId))!.getState()).toBe('waiting');
    await system.db.query("UPDATE trainings SET created_at = now() - interval '1 day' WHERE id = $1", [
      trainingId,
    ]);
    const { expired } = await system.gateway.sweepNow();
    expect(expired).toBe(1);
    expect((await system.api('GET', `/v1/trainings/${trainingId}`)).body.status).toBe('failed');
    expect(await portraitQueue.getJob(trainingId)).toBeUndefined();
  });

  it('deletes idempotency keys older than 24 h, for every tenant', async () => {
    await system.db.query(
      `INSERT INTO idempotency_keys (tenant_id, key, request_hash, status_code, response, created_at)
       VALUES ('acme', 'old-key', 'h', 202, '{}', now() - interval '25 hours'),
              ('globex', 'old-key', 'h', 202, '{}', now() - interval '25 hours'),
              ('acme', 'fresh-key', 'h', 202, '{}', now())`,
    );
    await system.gateway.sweepNow();
    const { rows } = await system.db.query(
      "SELECT tenant_id, key FROM idempotency_keys WHERE key IN ('old-key', 'fresh-key')",
    );
    expect(rows).toEqual([{ tenant_id: 'acme', key: 'fresh-key' }]);
  });

  it('counts and cancels an orphan: a completion for a request no row bound, under a row bound to another', async () => {
    const { trainingId } = await newTraining();
    await bind(trainingId, `rid-kept-${trainingId}`);
    // The completion of a second request for the row (a submit that timed out but which fal accepted).
    const orphan = {
      type: 'completed',
      entity: 'training',
      id: trainingId,
      falRequestId: `rid-orphan-${trainingId}`,
      source: 'webhook',
      output: loraOutputOf('orphan'),
      at: new Date().toISOString(),
    } as FalEvent;
    await events.add(JOBS.falEvent, orphan, { ...EVENT_JOB_OPTIONS, jobId: falEventJobId(orphan) });
    const parked = () =>
      system.db.query('SELECT 1 FROM parked_events WHERE fal_request_id = $1', [orphan.falRequestId]);
    await waitFor(async () => (await parked()).rowCount === 1, 10_000, 'the completion to be parked');

    // Younger than ORPHAN_AFTER_S: it may still be bound by a late `submitted`; left alone.
    await system.gateway.sweepNow();
    expect((await parked()).rowCount).toBe(1);

    await system.db.query(
      "UPDATE parked_events SET received_at = now() - interval '1 hour' WHERE fal_request_id = $1",
      [orphan.falRequestId],
    );
    await system.gateway.sweepNow();
    expect((await parked()).rowCount).toBe(0);
    const cancels = (await portraitQueue.getJobs(['waiting'])).filter(
      (j) => j.name === JOBS.cancel && j.data.id === trainingId,
    );
    expect(cancels.map((j) => [j.data.falRequestId, j.data.reason])).toEqual([
      [orphan.falRequestId, 'duplicate'],
    ]);
    const metrics = await (await fetch(`${system.gateway.url}/metrics`)).text();
    expect(metrics).toMatch(/gateway_duplicate_submissions_total\{entity="training"[^}]*\} [1-9]/);
    // The row keeps its own request, and is not completed by the orphan's (perfectly readable) result.
    const training = await system.api('GET', `/v1/trainings/${trainingId}`);
    expect(training.body).toMatchObject({
      status: 'submitted',
      result: null,
      fal_request_id: `rid-kept-${trainingId}`,
    });
  });
});
