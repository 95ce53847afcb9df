import { JOBS, QUEUES, closeOnSignals, createLogger, loadConfigOrExit, portEnv } from '@aisha/shared';
import { startWorkerService, submitGeneration, workerSections } from '@aisha/worker-runtime';

/** ultra-worker: `generate` → FLUX1.1 [pro] ultra fine-tuned or FLUX LoRA. Poll and cancel come with the runtime. */
async function main() {
  const config = loadConfigOrExit({ ...workerSections, port: portEnv('ULTRA_WORKER_PORT', 9103) });
  const log = createLogger('ultra-worker', config.log.level);
  const service = await startWorkerService(
    {
      service: 'ultra-worker',
      queue: QUEUES.generate,
      handlers: { [JOBS.submitGeneration]: submitGeneration },
    },
    config,
    log,
  );
  closeOnSignals(() => service.close(), log);
}

void main();
