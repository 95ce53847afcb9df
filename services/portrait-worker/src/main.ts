import { JOBS, QUEUES } from '@aisha/shared';
import { runWorkerMain, submitTraining } from '@aisha/worker-runtime';

/** portrait-worker: `train-portrait` → fal-ai/flux-lora-portrait-trainer. Poll and cancel come with the runtime. */
void runWorkerMain({
  service: 'portrait-worker',
  queue: QUEUES.trainPortrait,
  port: ['PORTRAIT_WORKER_PORT', 9101],
  handlers: (training) => ({ [JOBS.submitTraining]: submitTraining('portrait', training) }),
});
