import { createHash, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { EVENT_JOB_OPTIONS, FAL_WEBHOOK_HEADERS, JOBS, QUEUES } from '@aisha/shared';
import type { RunningSystem } from '@aisha/testkit';
import { runLoad, type LoadResult } from './http-load';

export const WEBHOOK_LOAD = { connections: 50, deliveries: 10_000, warmup: 1_000 };

const USER_ID = 'bench-user';

export interface WebhookIngestResult {
  bare: LoadResult;
  ingest: LoadResult;
  /** What webhook-ingest's own counter says of the measured run: every delivery must be `accepted`. */
  ingestOutcomes: Record<string, number>;
}

/** The bench's own fal signing key: it signs the deliveries, and its public half is served as a JWKS. */
export function createBenchSigner() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  return {
    publicKey,
    privateKey,
    jwk: { kty: 'OKP', crv: 'Ed25519', x, kid: 'bench', use: 'sig', alg: 'EdDSA' },
  };
}
export type BenchSigner = ReturnType<typeof createBenchSigner>;

/**
 * A JWKS with the bench's key first, then fal-sim's. webhook-ingest has one `FAL_JWKS_URL` for both the bench's
 * deliveries and fal-sim's real webhooks (the pipeline), and fal-sim makes its key at start; until
 * `includeKeysOf` names fal-sim's JWKS this answers 503, so webhook-ingest never caches a set without it.
 */
export async function startJwksServer(signer: BenchSigner) {
  let falSimKeys: Promise<unknown[]> | undefined;
  const server: Server = createServer((_req, res) => {
    if (!falSimKeys) {
      res.writeHead(503).end();
      return;
    }
    falSimKeys.then(
      (keys) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ keys: [signer.jwk, ...keys] })),
      () => res.writeHead(502).end(),
    );
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    includeKeysOf(jwksUrl: string) {
      falSimKeys = fetch(jwksUrl)
        .then((res) => res.json() as Promise<{ keys: unknown[] }>)
        .then((jwks) => jwks.keys);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * webhook-ingest against the least a verifying endpoint can do: Express 5, the raw body, sha256 + ED25519
 * verification with node:crypto and one `queue.add` on the same Redis. Both get the same number of unique,
 * freshly signed deliveries. fal-events is paused while webhook-ingest is measured, so the gateway's recorder
 * does not take CPU parking events for requests nobody made; the events are dropped afterwards.
 */
export async function benchWebhookIngest(deps: {
  system: RunningSystem;
  redis: Redis;
  signer: BenchSigner;
  barePrefix: string;
  tmpDir: string;
}): Promise<WebhookIngestResult> {
  const load = (url: string, count: number, name: string) => {
    // A few more than asked: autocannon may build one request per connection it never sends.
    process.env.BENCH_DELIVERIES_FILE = writeDeliveries(deps, name, count + WEBHOOK_LOAD.connections);
    return runLoad({
      url,
      method: 'POST',
      connections: WEBHOOK_LOAD.connections,
      amount: count,
      setupRequestModule: path.join(__dirname, 'signed-delivery-feed.js'),
    });
  };

  const bareServer = await startBareVerifyServer(deps.redis, deps.barePrefix, deps.signer.publicKey);
  let bare: LoadResult;
  try {
    await load(bareServer.url, WEBHOOK_LOAD.warmup, 'bare-warmup');
    bare = await load(bareServer.url, WEBHOOK_LOAD.deliveries, 'bare');
  } finally {
    await bareServer.close();
  }

  const events = new Queue(QUEUES.falEvents, { connection: deps.redis, prefix: deps.system.prefix });
  const url = `${deps.system.urls['webhook-ingest']}/v1/fal/webhook?entity=generation`;
  try {
    await events.pause();
    await load(url, WEBHOOK_LOAD.warmup, 'ingest-warmup');
    const before = await deliveryOutcomes(deps.system);
    const ingest = await load(url, WEBHOOK_LOAD.deliveries, 'ingest');
    const after = await deliveryOutcomes(deps.system);
    const ingestOutcomes = Object.fromEntries(
      Object.entries(after)
        .map(([outcome, n]) => [outcome, n - (before[outcome] ?? 0)] as const)
        .filter(([, n]) => n > 0),
    );
    // The events name fal requests that no row has: drop them instead of parking them in PostgreSQL.
    await events.drain(true);
    return { bare, ingest, ingestOutcomes };
  } finally {
    await events.resume();
    await events.close();
  }
}

/** Signs `count` deliveries now (each a new request id, timestamp now) into a file the load's worker reads. */
function writeDeliveries(deps: { signer: BenchSigner; tmpDir: string }, name: string, count: number): string {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const deliveries = Array.from({ length: count }, () => {
    const requestId = randomUUID();
    const body = JSON.stringify({
      request_id: requestId,
      gateway_request_id: requestId,
      status: 'OK',
      payload: {
        images: [
          {
            url: `https://v3.fal.media/files/bench/${requestId}.jpg`,
            width: 1024,
            height: 1024,
            content_type: 'image/jpeg',
          },
        ],
        seed: 42,
        has_nsfw_concepts: [false],
        prompt: 'a portrait in soft light',
      },
    });
    const message = `${requestId}\n${USER_ID}\n${timestamp}\n${sha256Hex(body)}`;
    const headers = {
      'content-type': 'application/json',
      [FAL_WEBHOOK_HEADERS.requestId]: requestId,
      [FAL_WEBHOOK_HEADERS.userId]: USER_ID,
      [FAL_WEBHOOK_HEADERS.timestamp]: timestamp,
      [FAL_WEBHOOK_HEADERS.signature]: sign(null, Buffer.from(message), deps.signer.privateKey).toString(
        'hex',
      ),
    };
    return { headers, body };
  });
  const file = path.join(deps.tmpDir, `deliveries-${name}.json`);
  writeFileSync(file, JSON.stringify(deliveries));
  return file;
}

/** The baseline: verify the signature over the raw body, add the event, answer 200. Nothing else. */
async function startBareVerifyServer(redis: Redis, prefix: string, publicKey: KeyObject) {
  const queue = new Queue(QUEUES.falEvents, { connection: redis, prefix });
  const app = express();
  app.post('/v1/fal/webhook', express.raw({ type: () => true, limit: '5mb' }), async (req, res) => {
    const header = (name: string) => String(req.headers[name]);
    const requestId = header(FAL_WEBHOOK_HEADERS.requestId);
    const message = `${requestId}\n${header(FAL_WEBHOOK_HEADERS.userId)}\n${header(FAL_WEBHOOK_HEADERS.timestamp)}\n${sha256Hex(req.body)}`;
    const signature = Buffer.from(header(FAL_WEBHOOK_HEADERS.signature), 'hex');
    if (!verify(null, Buffer.from(message), publicKey, signature)) {
      res.status(401).end();
      return;
    }
    await queue.add(JOBS.falEvent, JSON.parse(req.body.toString('utf8')), {
      ...EVENT_JOB_OPTIONS,
      jobId: `evt:completed:${requestId}`,
    });
    res.status(200).json({ status: 'accepted' });
  });
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/fal/webhook?entity=generation`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queue.obliterate({ force: true });
      await queue.close();
    },
  };
}

function sha256Hex(body: string | Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** `webhook_deliveries_total` by outcome, from webhook-ingest's /metrics. */
async function deliveryOutcomes(system: RunningSystem): Promise<Record<string, number>> {
  const text = await (await fetch(`${system.urls['webhook-ingest']}/metrics`)).text();
  const outcomes: Record<string, number> = {};
  for (const match of text.matchAll(/^webhook_deliveries_total\{[^}]*outcome="(\w+)"[^}]*\} (\d+)/gm)) {
    outcomes[match[1]!] = Number(match[2]);
  }
  return outcomes;
}
