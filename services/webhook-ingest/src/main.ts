import {
  closeOnSignals,
  createLogger,
  falEnv,
  loadConfigOrExit,
  logEnv,
  portEnv,
  redisEnv,
} from '@aisha/shared';
import { createWebhookIngest } from './index';

async function main() {
  const config = loadConfigOrExit({
    redis: redisEnv,
    fal: falEnv,
    log: logEnv,
    port: portEnv('INGEST_PORT', 8081),
  });
  const log = createLogger('webhook-ingest', config.log.level);
  const ingest = createWebhookIngest({
    redisUrl: config.redis.url,
    prefix: config.redis.prefix,
    jwksUrl: config.fal.jwksUrl,
    log,
  });
  const port = await ingest.listen(config.port);
  log.info({ port, jwks: config.fal.jwksUrl }, 'webhook-ingest listening on POST /v1/fal/webhook');

  closeOnSignals(() => ingest.close(), log);
}

void main();
