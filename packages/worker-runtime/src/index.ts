export { startWorkerService, type WorkerService, type WorkerServiceSpec } from './start-worker-service';
export { workerSections, workerSettingsEnv, type WorkerRuntimeConfig } from './worker-env';
export { submitRequest, type SubmitSpec } from './submit-request';
export { pollRequest, isRunFailure } from './poll-request';
export { cancelRequest } from './cancel-request';
export type { JobHandler, WorkerContext } from './worker-context';
export { submitTraining } from './submit-training';
export { submitGeneration } from './submit-generation';
export { runWorkerMain, type WorkerMain } from './run-worker-main';
