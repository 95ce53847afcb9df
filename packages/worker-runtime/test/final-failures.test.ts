import { JOBS, QUEUES, WORKER_JOB_OPTIONS, createFal, createLogger, type Logger } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';
import { trainingJob, withTestWorker, type TestWorker } from './worker-harness';

// design.md: after a submit's last attempt, a `failed` event, whatever ended it; a poll or cancel never fails the row.
let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

const withWorker = (env: Record<string, string>, run: (w: TestWorker) => Promise<void>, log?: Logger) =>
  withTestWorker(QUEUES.trainPortrait, sim, env, run, log);

const stateOf = async (w: TestWorker, id: string) => (await w.job(id))?.getState();
const failedEvents = async (w: TestWorker) => (await w.events()).filter((e) => e.type === 'failed');

describe('final failures', () => {
  it('a training on the wrong queue fails at once, with one failed event', async () => {
    await withWorker({}, async (w) => {
      await w.add(JOBS.submitTraining, trainingJob('tr-q', { trainingType: 'style' }), 'tr-q');
      await waitFor(async () => (await stateOf(w, 'tr-q')) === 'failed', 10_000, 'the job to fail');
      expect((await w.job('tr-q'))!.attemptsMade).toBe(1);
      const failed = await waitFor(async () => (await failedEvents(w))[0]);
      expect(failed).toMatchObject({ entity: 'training', id: 'tr-q' });
      expect(failed.error!.message).toContain('train-portrait trains portrait avatars, got a style training');
      expect(await failedEvents(w)).toHaveLength(1);
      expect(sim.requests()).toHaveLength(0);
    });
  });

  it('a submit whose last attempt meets a 503 emits failed, saying it gave up', async () => {
    sim.setFaults({ rate5xx: 1 });
    await withWorker({}, async (w) => {
      await w.jobs.add(JOBS.submitTraining, trainingJob('tr-5xx'), {
        ...WORKER_JOB_OPTIONS,
        attempts: 1,
        jobId: 'tr-5xx',
      });
      const failed = await waitFor(async () => (await failedEvents(w))[0], 10_000, 'a failed event');
      expect(failed.error!.message).toBe(
        'gave up after 1 attempts: fal answered 503: Service temporarily unavailable',
      );
      expect(await stateOf(w, 'tr-5xx')).toBe('failed');
    });
  });

  it('a wrong key fails a submit with exactly one failed event (no second one from the failed handler)', async () => {
    await withWorker({ FAL_KEY: 'wrong-key' }, async (w) => {
      await w.add(JOBS.submitTraining, trainingJob('tr-401'), 'tr-401');
      await waitFor(async () => (await stateOf(w, 'tr-401')) === 'failed');
      await waitFor(async () => (await failedEvents(w)).length > 0);
      const events = await failedEvents(w);
      expect(events).toHaveLength(1);
      expect(events[0]!.error!.message).toBe('fal rejected the key (401): check FAL_KEY');
    });
  });

  it('a poll whose payload does not parse fails at once and emits nothing', async () => {
    await withWorker({}, async (w) => {
      await w.add(JOBS.poll, { entity: 'training', id: 'tr-p' }, 'poll:tr-p:1');
      await waitFor(async () => (await stateOf(w, 'poll:tr-p:1')) === 'failed', 10_000, 'the poll to fail');
      const job = (await w.job('poll:tr-p:1'))!;
      expect(job.attemptsMade).toBe(1);
      expect(job.failedReason).toMatch(/^invalid poll payload: /);
      expect(await w.events()).toEqual([]);
    });
  });
});

describe('retry logs', () => {
  it('say once per retry why, after what delay, for which job and fal request', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('test-worker', 'info', {
      write: (line: string) => void lines.push(JSON.parse(line)),
    });
    const { requestId } = await createFal(sim.connection).submit('fal-ai/flux-lora-portrait-trainer', {
      images_data_url: 'https://example.test/photos.zip',
    });
    sim.setFaults({ rate5xx: 1 });
    await withWorker(
      { FAL_BREAKER_RESET_MS: '200' },
      async (w) => {
        const poll = {
          entity: 'training',
          id: 'tr-r',
          falRequestId: requestId,
          endpoint: 'fal-ai/flux-lora-portrait-trainer',
        };
        await w.add(JOBS.poll, poll, 'poll:tr-r:1');
        await waitFor(() => sim.stats().faults.http5xx >= 1);
        sim.setFaults({ rate5xx: 0 });
        await waitFor(async () => (await stateOf(w, 'poll:tr-r:1')) === 'completed', 15_000, 'the poll');
      },
      log,
    );
    const retries = lines.filter((l) => String(l.msg).includes('retry'));
    expect(retries).toEqual([
      expect.objectContaining({
        msg: 'will retry after backoff: fal answered 503: Service temporarily unavailable',
        jobId: 'poll:tr-r:1',
        falRequestId: requestId,
        attempt: 1,
        delayMs: expect.any(Number),
      }),
    ]);
  });
});
