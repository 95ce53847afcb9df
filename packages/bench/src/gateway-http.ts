import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOBS, QUEUES, WORKER_JOB_OPTIONS } from '@aisha/shared';
import type { RunningSystem } from '@aisha/testkit';
import { runLoad, type LoadResult } from './http-load';

export const GATEWAY_LOAD = { connections: 50, durationS: 10, warmupS: 2 };

export interface GatewayHttpResult {
  bare: LoadResult;
  gateway: LoadResult;
  /** The generations the gateway accepted (warm-up included): left paused in Redis, never run. */
  backlog: { generations: number };
}

/**
 * `POST /v1/generations` on the gateway against the least an enqueueing endpoint can do: Express 5,
 * `express.json()` and one `queue.add` on the same Redis. The generate queue is paused before the gateway is
 * measured, so that, like the bare handler's queue, nothing consumes it and the workers and fal-sim do not take
 * the gateway's CPU. It stays paused: working off thousands of generations would take longer than the whole
 * benchmark, so this one runs last and the system stops with its backlog still queued.
 */
export async function benchGatewayHttp(deps: {
  system: RunningSystem;
  redis: Redis;
  avatarId: string;
  barePrefix: string;
}): Promise<GatewayHttpResult> {
  const body = JSON.stringify({ avatar_id: deps.avatarId, prompt: 'a portrait in soft light' });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${deps.system.apiKey}` };
  const load = (url: string, durationS: number) =>
    runLoad({ url, method: 'POST', headers, body, connections: GATEWAY_LOAD.connections, durationS });

  const bareServer = await startBareEnqueueServer(deps.redis, deps.barePrefix);
  let bare: LoadResult;
  try {
    await load(bareServer.url, GATEWAY_LOAD.warmupS);
    bare = await load(bareServer.url, GATEWAY_LOAD.durationS);
  } finally {
    await bareServer.close();
  }

  const generate = new Queue(QUEUES.generate, { connection: deps.redis, prefix: deps.system.prefix });
  try {
    await generate.pause();
    const url = `${deps.system.urls.gateway}/v1/generations`;
    const warmup = await load(url, GATEWAY_LOAD.warmupS);
    const gateway = await load(url, GATEWAY_LOAD.durationS);
    return { bare, gateway, backlog: { generations: warmup.ok + gateway.ok } };
  } finally {
    await generate.close();
  }
}

/** The baseline: parse JSON, add the job the gateway would add, answer 202. Nothing else. */
async function startBareEnqueueServer(redis: Redis, prefix: string) {
  const queue = new Queue(QUEUES.generate, { connection: redis, prefix });
  const app = express();
  app.post('/v1/generations', express.json(), async (req, res) => {
    const job = await queue.add(JOBS.submitGeneration, req.body, WORKER_JOB_OPTIONS);
    res.status(202).json({ id: job.id, status: 'queued' });
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/generations`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}
