import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createLogger, QUEUES, type FalEvent } from '@aisha/shared';
import { uniquePrefix } from '@aisha/testkit';
import { createWebhookIngest, type IngestOptions } from '@aisha/webhook-ingest';

/** webhook-ingest in this process on a free port, with its own queue prefix, and a view of what it emitted. */
export async function startIngest(options: Partial<IngestOptions> & { jwksUrl: string }) {
  const prefix = options.prefix ?? uniquePrefix();
  const redisUrl = options.redisUrl ?? 'redis://127.0.0.1:6379';
  const ingest = createWebhookIngest({
    redisUrl,
    prefix,
    log: createLogger('webhook-ingest', 'silent'),
    ...options,
  });
  const port = await ingest.listen(0, '127.0.0.1');
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const events = new Queue(QUEUES.falEvents, { connection, prefix });
  return {
    prefix,
    connection,
    url: `http://127.0.0.1:${port}`,
    webhookUrl: (query = 'entity=training&id=tr_1') => `http://127.0.0.1:${port}/v1/fal/webhook?${query}`,
    /** Every event webhook-ingest put on `fal-events`. */
    async events(): Promise<FalEvent[]> {
      const jobs = await events.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
      return jobs.map((job) => job.data as FalEvent);
    },
    async stop() {
      await ingest.close();
      await events.obliterate({ force: true }).catch(() => undefined);
      await events.close();
      connection.disconnect();
    },
  };
}

export async function post(url: string, headers: Record<string, string>, body: Buffer) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: new Uint8Array(body),
  });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: await res.json().catch(() => null),
  };
}
