import type { ChildProcess } from 'node:child_process';
import { JOBS, QUEUES } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { uniquePrefix, waitFor } from '@aisha/testkit';
import { exitOf, queueView, startWorkerProcess, trainingJob } from './worker-harness';

// SIGTERM with a fal call in flight: the orchestrator's patience is 10 s (closeOnSignals exits 1 after that).
let sim: FalSim;
const children: ChildProcess[] = [];
beforeAll(async () => {
  sim = await startFalSim({ queueMs: 0, trainingMs: 0 });
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sim.stop();
});

describe('a worker stopped with SIGTERM while its submit hangs at fal', () => {
  it('releases the job and exits 0 within 10 s; a second worker completes it with one submission', async () => {
    const prefix = uniquePrefix();
    const view = await queueView(QUEUES.trainPortrait, prefix);
    // Default grace (8 s) and fal call timeout (14 s): the hung call outlives the grace, as in production.
    const env = { FAL_ADOPT_WINDOW_MS: '1000' };
    try {
      sim.setFaults({ rateTimeout: 1 });
      await view.add(JOBS.submitTraining, trainingJob('tr-term'), 'tr-term');
      const first = startWorkerProcess(QUEUES.trainPortrait, sim, prefix, env);
      children.push(first);
      await waitFor(() => sim.stats().faults.hangs >= 1, 15_000, 'a submit hanging at fal-sim');
      sim.setFaults({ rateTimeout: 0 });

      const stoppedAt = Date.now();
      first.kill('SIGTERM');
      expect(await exitOf(first)).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(10_000);
      const released = (await view.job('tr-term'))!;
      expect(['delayed', 'waiting']).toContain(await released.getState());
      expect(released.attemptsMade).toBe(0);

      const second = startWorkerProcess(QUEUES.trainPortrait, sim, prefix, env);
      children.push(second);
      await waitFor(
        async () => (await (await view.job('tr-term'))!.getState()) === 'completed',
        20_000,
        'the second worker to complete the job',
      );
      // One hung call and one accepted submission: the release made no second request at fal.
      expect(sim.stats().calls.submit).toBe(2);
      expect(sim.requests()).toHaveLength(1);
      second.kill('SIGTERM');
      expect(await exitOf(second)).toBe(0);
    } finally {
      await view.close();
    }
  });
});
