import {
  closeOnSignals,
  createLogger,
  loadConfigOrExit,
  portEnv,
  trainingEnv,
  type TrainingConfig,
  type WorkerQueueName,
} from '@aisha/shared';
import { startWorkerService } from './start-worker-service';
import type { JobHandler } from './worker-context';
import { workerSections } from './worker-env';

export interface WorkerMain {
  service: string;
  queue: WorkerQueueName;
  /** The port variable and its default, e.g. `['PORTRAIT_WORKER_PORT', 9101]`. */
  port: [string, number];
  handlers: (training: TrainingConfig) => Record<string, JobHandler>;
}

/** A worker service's whole `main`: parse the configuration (exit naming a bad variable), start, stop on signals. */
export async function runWorkerMain(main: WorkerMain): Promise<void> {
  const config = loadConfigOrExit({ ...workerSections, training: trainingEnv, port: portEnv(...main.port) });
  const log = createLogger(main.service, config.log.level);
  const service = await startWorkerService(
    { service: main.service, queue: main.queue, handlers: main.handlers(config.training) },
    config,
    log,
  );
  closeOnSignals(() => service.close(), log);
}
