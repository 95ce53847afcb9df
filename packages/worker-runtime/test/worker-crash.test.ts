import type { ChildProcess } from 'node:child_process';
import { createLogger, JOBS, QUEUES } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { uniquePrefix, waitFor } from '@aisha/testkit';
import { createWebhookIngest, type WebhookIngest } from '@aisha/webhook-ingest';
import { exitOf, queueView, startWorkerProcess } from './worker-harness';

let sim: FalSim;
const children: ChildProcess[] = [];
beforeAll(async () => {
  // Each submit's answer takes 400 ms, so that the kill lands while submits are pending at fal; generations end
  // (and their webhooks come) about a second after being accepted, well within the adopt window.
  sim = await startFalSim({ queueMs: 0, generationMs: 1_000, faults: { latencyMs: 400 } });
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await sim.stop();
});

const WORKER_ENV = {
  WORKER_CONCURRENCY: '50',
  // Short locks, so that the jobs of a killed worker are handed over in seconds rather than 30 s.
  WORKER_LOCK_MS: '2000',
  WORKER_STALLED_INTERVAL_MS: '1000',
  // A submit the killed worker never heard back from waits this long for its webhook's nonce.
  FAL_ADOPT_WINDOW_MS: '10000',
};

function generationJob(id: string) {
  return {
    generationId: id,
    tenantId: 'dev',
    model: { kind: 'finetune', id: 'ft-1' },
    request: { prompt: id },
  };
}

describe('a worker killed with SIGKILL while its submits are in flight at fal', () => {
  it('loses nothing: a second worker finishes every job, adopting what fal accepted', async () => {
    const prefix = uniquePrefix();
    const view = await queueView(QUEUES.generate, prefix);
    // webhook-ingest records each webhook's nonce → request id, which is what lets the second worker adopt.
    const ingest: WebhookIngest = createWebhookIngest({
      redisUrl: 'redis://127.0.0.1:6379',
      prefix,
      jwksUrl: sim.jwksUrl,
      log: createLogger('webhook-ingest', 'silent'),
    });
    const ingestPort = await ingest.listen(0, '127.0.0.1');
    const env = { ...WORKER_ENV, PUBLIC_WEBHOOK_BASE_URL: `http://127.0.0.1:${ingestPort}` };
    try {
      const ids = Array.from({ length: 50 }, (_, i) => `gen-k${i}`);
      await Promise.all(ids.map((id) => view.add(JOBS.submitGeneration, generationJob(id), id)));

      const first = startWorkerProcess(QUEUES.generate, sim, prefix, env);
      children.push(first);
      await waitFor(() => sim.stats().calls.submit >= 25, 20_000, '25 submits at fal-sim');
      first.kill('SIGKILL');
      const atKill = structuredClone(sim.stats()); // its counters are live objects
      expect(atKill.accepted).toBeLessThan(atKill.calls.submit); // answers were still pending
      await exitOf(first);

      const second = startWorkerProcess(QUEUES.generate, sim, prefix, { ...env, LOG_LEVEL: 'info' });
      children.push(second);
      let secondLog = '';
      second.stdout!.on('data', (chunk: Buffer) => (secondLog += chunk.toString()));
      await waitFor(
        async () => (await view.jobs.getJobCounts('completed')).completed === 50,
        45_000,
        '50 completed',
      );

      const owners = new Map<string, string>();
      for (const id of ids) owners.set(id, (await view.job(id))!.data.submission.falRequestId);
      const requests = sim.requests();
      const duplicates = requests.filter(
        (r) => owners.get(new URL(r.webhookUrl!).searchParams.get('id')!) !== r.requestId,
      );
      const adopted = secondLog.split('\n').filter((l) => l.includes('adopted the request')).length;
      console.log(
        `kill -9 with ${atKill.calls.submit} submits in flight (${atKill.accepted} answered): ` +
          `${requests.length} fal submissions for 50 jobs, ${adopted} adopted, ${duplicates.length} duplicates`,
      );
      expect(new Set(owners.values()).size).toBe(50);
      expect(adopted).toBeGreaterThan(0);
      // A duplicate is a second billed request: the design allows one only when its webhook missed the adopt
      // window, and then it must have been cancelled at fal.
      expect(duplicates.length).toBeLessThanOrEqual(5);
      for (const duplicate of duplicates) expect(duplicate.cancelRequests).toBeGreaterThanOrEqual(1);
      const submittedEvents = (await view.events()).filter((e) => e.type === 'submitted');
      expect(new Set(submittedEvents.map((e) => e.id))).toEqual(new Set(ids));

      // SIGTERM: the survivor drains and exits 0.
      second.kill('SIGTERM');
      expect(await exitOf(second)).toBe(0);
    } finally {
      await ingest.close();
      await view.close();
    }
  });
});
