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

/** portrait-worker: `train-portrait` → fal-ai/flux-lora-portrait-trainer. Poll and cancel come with the runtime. */
async function main() {
  const config = loadConfigOrExit({
    ...workerSections,
    training: trainingEnv,
    port: portEnv('PORTRAIT_WORKER_PORT', 9101),
  });
  const log = createLogger('portrait-worker', config.log.level);
  const service = await startWorkerService(
    {
      service: 'portrait-worker',
      queue: QUEUES.trainPortrait,
      handlers: { [JOBS.submitTraining]: submitTraining('portrait', config.training) },
    },
    config,
    log,
  );
  closeOnSignals(() => service.close(), log);
}

void main();
