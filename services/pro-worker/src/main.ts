import { JOBS, QUEUES } from '@aisha/shared';
import { runWorkerMain, submitTraining } from '@aisha/worker-runtime';

/**
 * pro-worker: `train-pro` → PRO_TRAINER_ENDPOINT: fal-ai/flux-pro-trainer (a finetune_id; deprecated by fal) or
 * fal-ai/flux-lora-fast-training (a LoRA file). Poll and cancel come with the runtime.
 */
void runWorkerMain({
  service: 'pro-worker',
  queue: QUEUES.trainPro,
  port: ['PRO_WORKER_PORT', 9102],
  handlers: (training) => ({ [JOBS.submitTraining]: submitTraining('style', training) }),
});
