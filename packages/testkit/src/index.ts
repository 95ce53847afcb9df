import { randomUUID } from 'node:crypto';

export { waitFor } from './wait-for';
export { startWebhookReceiver, type Delivery } from './webhook-receiver';
export { startDedicatedRedis, freePort } from './redis-server';

/** A BullMQ prefix of the test's own, so parallel test files never see each other's jobs. */
export function uniquePrefix(): string {
  return `{test-${randomUUID().slice(0, 8)}}`;
}
export {
  dropDatabase,
  launchSystem,
  SERVICE_NAMES,
  SERVICE_PORT_VARIABLES,
  type RunningSystem,
  type ServiceName,
  type SystemOptions,
} from './system-processes';
