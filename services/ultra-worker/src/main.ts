import { JOBS, QUEUES } from '@aisha/shared';
import { runWorkerMain, submitGeneration } from '@aisha/worker-runtime';

/** ultra-worker: `generate` → FLUX1.1 [pro] ultra fine-tuned or FLUX LoRA. Poll and cancel come with the runtime. */
void runWorkerMain({
  service: 'ultra-worker',
  queue: QUEUES.generate,
  port: ['ULTRA_WORKER_PORT', 9103],
  handlers: () => ({ [JOBS.submitGeneration]: submitGeneration }),
});
