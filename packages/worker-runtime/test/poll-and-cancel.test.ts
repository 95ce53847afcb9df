import { Redis } from 'ioredis';
import { JOBS, QUEUES, createFal, falEventJobId, submissionNonceKey } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';
import { metricValue, trainingJob, withTestWorker, type TestWorker } from './worker-harness';

let sim: FalSim;
let slow: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
  slow = await startFalSim({ queueMs: 60_000 });
});
afterAll(async () => {
  await sim.stop();
  await slow.stop();
});
beforeEach(() => sim.reset());

/** The row a fal-sim request was submitted for, from its webhook URL. */
const rowOf = (r: { webhookUrl?: string }) =>
  r.webhookUrl ? new URL(r.webhookUrl).searchParams.get('id') : undefined;

const withWorker = (fal: FalSim, run: (w: TestWorker) => Promise<void>) =>
  withTestWorker(QUEUES.generate, fal, {}, run);

describe('poll jobs', () => {
  it('emit completed with the output of a finished request, under the same event id a webhook gets', async () => {
    const { requestId } = await createFal(sim.connection).submit('fal-ai/flux-lora', { prompt: 'x' });
    await waitFor(() => sim.requests()[0]!.status === 'COMPLETED');
    await withWorker(sim, async (w) => {
      const poll = {
        entity: 'generation',
        id: 'gen-p1',
        falRequestId: requestId,
        endpoint: 'fal-ai/flux-lora',
      };
      await w.add(JOBS.poll, poll, 'poll:gen-p1:1');
      const event = await waitFor(async () => (await w.events()).find((e) => e.type === 'completed'));
      expect(event).toMatchObject({ id: 'gen-p1', falRequestId: requestId, source: 'poll' });
      expect((event.output as { images: unknown[] }).images).toHaveLength(1);
      // The event is emitted just before the job is acknowledged: wait for the acknowledgement.
      const job = await waitFor(async () => (await w.jobs.getJobs(['completed']))[0]);
      expect(job.returnvalue).toBe('completed');
      expect(falEventJobId(event)).toBe(`evt:completed:${requestId}`);
    });
  });

  it("emit failed with fal's message for a request that failed", async () => {
    sim.setFaults({ runFailureRate: 1 });
    const { requestId } = await createFal(sim.connection).submit('fal-ai/flux-lora', { prompt: 'x' });
    await waitFor(() => sim.requests()[0]!.status === 'COMPLETED');
    await withWorker(sim, async (w) => {
      await w.add(
        JOBS.poll,
        { entity: 'generation', id: 'gen-p2', falRequestId: requestId, endpoint: 'fal-ai/flux-lora' },
        'poll:gen-p2:1',
      );
      const event = await waitFor(async () => (await w.events()).find((e) => e.type === 'failed'));
      expect(event.error!.message).toBe('fal answered 500: fal-ai/flux-lora failed: simulated runner error');
    });
  });

  it('emit progress with the queue position while a request waits', async () => {
    const { requestId } = await createFal(slow.connection).submit('fal-ai/flux-lora', { prompt: 'x' });
    await withWorker(slow, async (w) => {
      await w.add(
        JOBS.poll,
        { entity: 'generation', id: 'gen-p3', falRequestId: requestId, endpoint: 'fal-ai/flux-lora' },
        'poll:gen-p3:1',
      );
      const event = await waitFor(async () => (await w.events()).find((e) => e.type === 'progress'));
      expect(event.progress).toEqual({ queuePosition: 0 });
    });
  });
});

describe('cancel jobs', () => {
  it('cancel a submitted request at fal and emit cancelled', async () => {
    await withWorker(slow, async (w) => {
      const data = {
        generationId: 'gen-c1',
        tenantId: 'dev',
        model: { kind: 'finetune', id: 'ft' },
        request: { prompt: 'x' },
      };
      await w.add(JOBS.submitGeneration, data, 'gen-c1');
      const submitted = await waitFor(async () => (await w.events()).find((e) => e.type === 'submitted'));
      await w.add(JOBS.cancel, { entity: 'generation', id: 'gen-c1' }, 'cancel:gen-c1:1');
      const cancelled = await waitFor(async () => (await w.events()).find((e) => e.type === 'cancelled'));
      expect(cancelled).toMatchObject({ id: 'gen-c1', falRequestId: submitted.falRequestId });
      expect(slow.requests().find((r) => r.requestId === submitted.falRequestId)!.cancelled).toBe(true);
    });
  });

  it('take a job that never reached fal off the queue', async () => {
    await withTestWorker(QUEUES.trainPortrait, sim, {}, async (worker) => {
      // Waiting behind a delay: it has not reached fal when the cancel comes.
      await worker.jobs.add(JOBS.submitTraining, trainingJob('tr-c2'), { jobId: 'tr-c2', delay: 60_000 });
      await worker.add(JOBS.cancel, { entity: 'training', id: 'tr-c2' }, 'cancel:tr-c2:1');
      const cancelled = await waitFor(async () =>
        (await worker.events()).find((e) => e.type === 'cancelled'),
      );
      expect(cancelled).toMatchObject({ entity: 'training', id: 'tr-c2' });
      expect(cancelled.falRequestId).toBeUndefined();
      expect(await worker.job('tr-c2')).toBeUndefined();
      expect(sim.requests()).toHaveLength(0);
    });
  });

  it('stop the fal request of a submit that never heard back, once its webhook names it', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      await withTestWorker(QUEUES.trainPortrait, slow, {}, async (worker) => {
        // fal accepts the submit but its answer is lost: the job keeps only its intent (nonce) and retries.
        slow.setFaults({ lostAnswerRate: 1 });
        await worker.add(JOBS.submitTraining, trainingJob('tr-c3'), 'tr-c3');
        await waitFor(() => slow.stats().faults.answersLost >= 1, 10_000, 'a lost answer');
        slow.setFaults({ lostAnswerRate: 0 });
        const orphan = slow.requests().find((r) => rowOf(r) === 'tr-c3')!;
        await waitFor(async () => (await (await worker.job('tr-c3'))?.getState()) === 'delayed');

        await worker.add(JOBS.cancel, { entity: 'training', id: 'tr-c3' }, 'cancel:tr-c3:1');
        await waitFor(async () => (await worker.events()).find((e) => e.type === 'cancelled'));
        expect(await worker.job('tr-c3')).toBeUndefined();
        // The cancel waits for the webhook's nonce; here it arrives, recorded as webhook-ingest records it.
        await waitFor(async () => (await (await worker.job('cancel:tr-c3:1'))!.getState()) === 'delayed');
        expect(orphan.cancelled).toBe(false);
        const nonce = new URL(orphan.webhookUrl!).searchParams.get('nonce')!;
        await redis.set(submissionNonceKey(worker.prefix, nonce), orphan.requestId, 'EX', 600);

        await waitFor(
          () => slow.requests().find((r) => r.requestId === orphan.requestId)!.cancelled,
          10_000,
          'the orphan cancelled at fal',
        );
        const forRow = slow.requests().filter((r) => rowOf(r) === 'tr-c3');
        expect(forRow).toHaveLength(1);
      });
    } finally {
      redis.disconnect();
    }
  });
});

describe('poll and cancel jobs with a key fal rejects', () => {
  it('fail the job (counted) but never the row: the request may well have succeeded', async () => {
    const { requestId } = await createFal(sim.connection).submit('fal-ai/flux-lora', { prompt: 'x' });
    await withTestWorker(QUEUES.generate, sim, { FAL_KEY: 'wrong-key' }, async (worker) => {
      const subject = {
        entity: 'generation',
        id: 'gen-k1',
        falRequestId: requestId,
        endpoint: 'fal-ai/flux-lora',
      };
      await worker.add(JOBS.poll, subject, 'poll:gen-k1:1');
      await worker.add(JOBS.cancel, subject, 'cancel:gen-k1:1');
      for (const id of ['poll:gen-k1:1', 'cancel:gen-k1:1']) {
        await waitFor(async () => (await (await worker.job(id))!.getState()) === 'failed', 10_000, id);
        const failed = (await worker.job(id))!;
        expect(failed.failedReason).toBe('fal rejected the key (401): check FAL_KEY');
        expect(failed.attemptsMade).toBe(1);
      }
      expect(await metricValue(worker.service, 'worker_jobs_total', { job: 'poll', outcome: 'failed' })).toBe(
        1,
      );
      expect(
        await metricValue(worker.service, 'worker_jobs_total', { job: 'cancel', outcome: 'failed' }),
      ).toBe(1);
      expect(await worker.events()).toEqual([]);
    });
  });
});
