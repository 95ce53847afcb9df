import {
  JOBS,
  QUEUES,
  closeOnSignals,
  createLogger,
  loadConfigOrExit,
  portEnv,
  trainingEnv,
} from '@aisha/shared';
import { startWorkerService, submitTraining, workerSections } from '@aisha/worker-runtime';

/**
 * pro-worker: `train-pro` → PRO_TRAINER_ENDPOINT: fal-ai/flux-pro-trainer (a finetune_id; deprecated by fal) or
 * fal-ai/flux-lora-fast-training (a LoRA file). Poll and cancel come with the runtime.
 */
async function main() {
  const config = loadConfigOrExit({
    ...workerSections,
    training: trainingEnv,
    port: portEnv('PRO_WORKER_PORT', 9102),
  });
  const log = createLogger('pro-worker', config.log.level);
  log.info({ endpoint: config.training.proTrainerEndpoint }, 'style trainings go to this endpoint');
  const service = await startWorkerService(
    {
      service: 'pro-worker',
      queue: QUEUES.trainPro,
      handlers: { [JOBS.submitTraining]: submitTraining('style', config.training) },
    },
    config,
    log,
  );
  closeOnSignals(() => service.close(), log);
}

void main();
