import { createLogger, falEnv, loadConfigOrExit, logEnv, portEnv, redisEnv } from '@aisha/shared';
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

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'draining in-flight deliveries');
    const deadline = setTimeout(() => process.exit(1), 10_000);
    await ingest.close();
    clearTimeout(deadline);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
