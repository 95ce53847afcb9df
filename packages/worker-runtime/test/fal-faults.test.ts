import { JOBS, QUEUES } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';
import { metricValue, trainingJob, withTestWorker, type TestWorker } from './worker-harness';

let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0, generationMs: 0 });
});
afterAll(() => sim.stop());
beforeEach(() => sim.reset());

const withWorker = (env: Record<string, string>, run: (w: TestWorker) => Promise<void>) =>
  withTestWorker(QUEUES.trainPortrait, sim, { WORKER_CONCURRENCY: '20', ...env }, run);

describe('workers under fal faults', () => {
  it('submits each of 100 jobs exactly once through 50 % 429s, spending no attempt on them', async () => {
    sim.setFaults({ rate429: 0.5, retryAfterS: 1 });
    // 429s count against the breaker (fal's concurrency limit is endpoint-wide): let it close again quickly.
    await withWorker({ FAL_BREAKER_RESET_MS: '1000' }, async (w) => {
      const ids = Array.from({ length: 100 }, (_, i) => `tr-${i}`);
      await Promise.all(ids.map((id) => w.add(JOBS.submitTraining, trainingJob(id), id)));
      await waitFor(
        async () => (await w.jobs.getJobCounts('completed')).completed === 100,
        60_000,
        '100 submits',
      );
      expect(sim.stats().faults.http429).toBeGreaterThan(20);
      const accepted = sim.requests();
      expect(accepted).toHaveLength(100);
      const rowIds = accepted.map((r) => new URL(r.webhookUrl!).searchParams.get('id'));
      expect(new Set(rowIds).size).toBe(100);
      // BullMQ counts the attempt that completed a job; a 429 or an open breaker delays it without spending one.
      const jobs = await Promise.all(ids.map((id) => w.job(id)));
      expect(jobs.map((j) => j!.attemptsMade)).toEqual(ids.map(() => 1));
      expect((await w.jobs.getJobCounts('failed')).failed).toBe(0);
      expect(
        await metricValue(w.service, 'worker_rate_limit_delays_total', { reason: 'rate_limit' }),
      ).toBeGreaterThan(20);
    });
  });

  it('honours Retry-After: one request for the refused attempt, then the job runs again', async () => {
    sim.setFaults({ rate429: 1, retryAfterS: 2 });
    await withWorker({}, async (w) => {
      await w.add(JOBS.submitTraining, trainingJob('tr-ra'), 'tr-ra');
      await waitFor(() => sim.stats().faults.http429 === 1);
      sim.setFaults({ rate429: 0 });
      await waitFor(
        async () => (await (await w.job('tr-ra'))!.getState()) === 'delayed',
        5_000,
        'the job delayed',
      );
      const delayed = await w.job('tr-ra');
      // Delayed by Retry-After (2 s), not by a fraction of it.
      expect(delayed!.delay).toBeGreaterThanOrEqual(1_900);
      await waitFor(
        async () => (await (await w.job('tr-ra'))!.getState()) === 'completed',
        10_000,
        'the retry',
      );
      const calls = (await (await fetch(`${sim.url}/_sim/stats`)).json()).calls.submit;
      expect(calls).toBe(2);
      expect(sim.requests()).toHaveLength(1);
      expect((await w.job('tr-ra'))!.attemptsMade).toBe(1);
    });
  });

  it('fails at once on a wrong fal key, saying to check FAL_KEY', async () => {
    await withWorker({ FAL_KEY: 'wrong-key' }, async (w) => {
      await w.add(JOBS.submitTraining, trainingJob('tr-auth'), 'tr-auth');
      const failed = await waitFor(async () => (await w.events()).find((e) => e.type === 'failed'));
      expect(failed).toMatchObject({ entity: 'training', id: 'tr-auth' });
      expect(failed.error!.message).toBe('fal rejected the key (401): check FAL_KEY');
      const job = await w.job('tr-auth');
      await waitFor(async () => (await job!.getState()) === 'failed');
      expect((await w.job('tr-auth'))!.attemptsMade).toBe(1);
    });
  });

  it('opens the breaker on 503s and delays jobs instead of failing them; they complete after fal recovers', async () => {
    sim.setFaults({ rate5xx: 1 });
    await withWorker({ FAL_BREAKER_RESET_MS: '1000' }, async (w) => {
      const ids = Array.from({ length: 10 }, (_, i) => `tr-b${i}`);
      await Promise.all(ids.map((id) => w.add(JOBS.submitTraining, trainingJob(id), id)));
      await waitFor(
        async () =>
          (await metricValue(w.service, 'fal_breaker_state', {
            endpoint: 'fal-ai/flux-lora-portrait-trainer',
          })) === 2,
        15_000,
        'the breaker to open',
      );
      await waitFor(
        async () =>
          ((await metricValue(w.service, 'worker_rate_limit_delays_total', { reason: 'breaker_open' })) ??
            0) > 0,
        15_000,
        'a job delayed by the open breaker',
      );
      expect((await w.jobs.getJobCounts('failed')).failed).toBe(0);
      sim.setFaults({ rate5xx: 0 });
      await waitFor(
        async () => (await w.jobs.getJobCounts('completed')).completed === 10,
        60_000,
        'recovery',
      );
      expect(sim.requests()).toHaveLength(10);
      expect((await w.events()).filter((e) => e.type === 'failed')).toHaveLength(0);
    });
  });
});
