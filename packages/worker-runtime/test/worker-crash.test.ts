import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { JOBS, QUEUES } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { uniquePrefix, waitFor } from '@aisha/testkit';
import { queueView, trainingJob, workerEnv } from './worker-harness';

// The built worker, run as production runs it: a process of its own (`npm test` builds before testing).
const MAIN = path.resolve(__dirname, '../../../services/portrait-worker/dist/main.js');

let sim: FalSim;
const children: ChildProcess[] = [];
beforeAll(async () => {
  // Slow answers keep submits in flight when the worker dies; trainings never finish during the test.
  sim = await startFalSim({ queueMs: 60_000, faults: { latencyMs: 400 } });
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sim.stop();
});

function startWorkerProcess(prefix: string): ChildProcess {
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH,
      ...workerEnv(sim, prefix, {
        PORTRAIT_WORKER_PORT: '0',
        WORKER_CONCURRENCY: '50',
        // Short locks, so that the jobs of a killed worker are handed over in seconds rather than 30 s.
        WORKER_LOCK_MS: '2000',
        WORKER_STALLED_INTERVAL_MS: '1000',
      }),
    },
    stdio: 'ignore',
  });
  children.push(child);
  return child;
}

describe('a worker killed with SIGKILL mid-job', () => {
  it('loses nothing: a second worker finishes every job, and duplicates at fal are cancelled', async () => {
    const prefix = uniquePrefix();
    const view = await queueView(QUEUES.trainPortrait, prefix);
    try {
      const ids = Array.from({ length: 50 }, (_, i) => `tr-k${i}`);
      await Promise.all(ids.map((id) => view.add(JOBS.submitTraining, trainingJob(id), id)));

      const first = startWorkerProcess(prefix);
      await waitFor(
        async () => ((await view.jobs.getJobCounts('active')).active ?? 0) >= 25,
        20_000,
        '25 active jobs',
      );
      first.kill('SIGKILL');

      const second = startWorkerProcess(prefix);
      await waitFor(
        async () => (await view.jobs.getJobCounts('completed')).completed === 50,
        90_000,
        '50 completed',
      );

      const owners = new Map<string, string>();
      for (const id of ids) owners.set(id, (await view.job(id))!.data.submission.falRequestId);
      const requests = sim.requests();
      const duplicates = requests.filter(
        (r) => owners.get(new URL(r.webhookUrl!).searchParams.get('id')!) !== r.requestId,
      );
      console.log(
        `kill -9 with 50 jobs active: ${requests.length} fal submissions, ${duplicates.length} duplicates`,
      );
      expect(new Set(owners.values()).size).toBe(50);
      expect(duplicates.length).toBeLessThanOrEqual(5);
      for (const duplicate of duplicates) expect(duplicate.cancelRequests).toBeGreaterThanOrEqual(1);
      const submittedEvents = (await view.events()).filter((e) => e.type === 'submitted');
      expect(new Set(submittedEvents.map((e) => e.id))).toEqual(new Set(ids));

      // SIGTERM: the survivor drains and exits 0.
      const exited = new Promise<number | null>((resolve) => second.once('exit', (code) => resolve(code)));
      second.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      await view.close();
    }
  });
});
