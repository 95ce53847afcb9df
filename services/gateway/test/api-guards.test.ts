import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUES } from '@aisha/shared';
import { waitFor } from '@aisha/testkit';
import { KEYS, startPortraitTraining, startSystem, uploadPhotos, type System } from './system-harness';

let system: System;
let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
beforeAll(async () => {
  // fal-sim calls webhook-ingest through a proxy that keeps a copy of every real, signed delivery.
  proxy = await startRecordingProxy();
  system = await startSystem({ sim: { trainingMs: 30 }, env: { PUBLIC_WEBHOOK_BASE_URL: proxy.url } });
  proxy.target = new URL(system.ingestUrl('')).origin;
});
afterAll(async () => {
  await system.stop();
  await proxy.stop();
});

interface RecordedDelivery {
  url: string;
  headers: http.IncomingHttpHeaders;
  raw: Buffer;
}

/** Forwards every request to `target` unchanged and records it. */
async function startRecordingProxy() {
  const deliveries: RecordedDelivery[] = [];
  const state = { target: '' };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      deliveries.push({ url: req.url ?? '', headers: req.headers, raw });
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(
          ([k, v]) => typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k),
        ),
      ) as Record<string, string>;
      try {
        const answer = await fetch(`${state.target}${req.url}`, {
          method: req.method,
          headers,
          body: raw.length ? new Uint8Array(raw) : undefined,
        });
        res.statusCode = answer.status;
        res.end(Buffer.from(await answer.arrayBuffer()));
      } catch {
        res.statusCode = 502;
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    set target(origin: string) {
      state.target = origin;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const counts = async () => {
  const { rows } = await system.db.query(
    `SELECT (SELECT count(*) FROM avatars)::int AS avatars, (SELECT count(*) FROM trainings)::int AS trainings,
            (SELECT count(*) FROM generations)::int AS generations`,
  );
  return rows[0];
};

async function readyAvatar() {
  const started = await startPortraitTraining(system, 'a');
  await waitFor(
    async () => (await system.api('GET', `/v1/avatars/${started.avatar.id}`)).body.status === 'ready',
    20_000,
  );
  return started;
}

describe('bad input answers problem+json and writes nothing', () => {
  it.each([
    ['malformed JSON', 'POST', '/v1/avatars', '{"name": ', 400],
    ['an unknown field', 'POST', '/v1/avatars', { name: 'x', training_type: 'portrait', colour: 'red' }, 400],
    [
      'a metadata address as images_data_url',
      'POST',
      '/v1/avatars',
      { name: 'x', training_type: 'portrait', images_data_url: 'http://169.254.169.254/' },
      400,
    ],
    ['a 100 KB prompt', 'POST', '/v1/generations', { avatar_id: 'av_x', prompt: 'x'.repeat(100_000) }, 400],
    [
      'finetune_strength 3',
      'POST',
      '/v1/generations',
      { avatar_id: 'av_x', prompt: 'x', finetune_strength: 3 },
      400,
    ],
    ['an unknown route', 'GET', '/v1/nothing-here', undefined, 404],
    [
      'a body over 1 MB',
      'POST',
      '/v1/generations',
      { avatar_id: 'av_x', prompt: 'x'.repeat(2_000_000) },
      413,
    ],
    ['an unknown route outside /v1', 'GET', '/nothing-here', undefined, 404],
  ])('%s', async (_what, method, path, body, status) => {
    const before = await counts();
    const answer = await system.api(method, path, body);
    expect(answer.status).toBe(status);
    expect(answer.type).toContain('application/problem+json');
    expect(answer.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
    expect(await counts()).toEqual(before);
  });

  it('names the field in a validation error', async () => {
    const answer = await system.api('POST', '/v1/generations', {
      avatar_id: 'av_x',
      prompt: 'x',
      finetune_strength: 3,
    });
    expect(answer.body.errors).toEqual([
      { path: 'finetune_strength', message: expect.stringContaining('2') },
    ]);
  });

  it('401 without a key or with a wrong one', async () => {
    expect((await system.api('GET', '/v1/avatars/av_x', undefined, '')).status).toBe(401);
    expect((await system.api('GET', '/v1/avatars/av_x', undefined, 'not-a-key')).status).toBe(401);
  });

  it("refuses a metadata address, or plain http, as a training's images_data_url, leaving the avatar a draft", async () => {
    const avatar = await system.api('POST', '/v1/avatars', { name: 'ssrf', training_type: 'portrait' });
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://example.com/photos.zip']) {
      const before = await counts();
      const answer = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, {
        preset: 'fast',
        images_data_url: url,
      });
      expect(answer.status).toBe(400);
      expect(answer.type).toContain('application/problem+json');
      expect(answer.body.errors).toEqual([{ path: 'images_data_url', message: expect.any(String) }]);
      expect(await counts()).toEqual(before);
    }
    expect((await system.api('GET', `/v1/avatars/${avatar.body.id}`)).body.status).toBe('draft');
  });

  it("404 for another tenant's avatar, and 409 to generate with a draft avatar", async () => {
    const avatar = await system.api('POST', '/v1/avatars', { name: 'mine', training_type: 'portrait' });
    expect((await system.api('GET', `/v1/avatars/${avatar.body.id}`, undefined, KEYS.globex)).status).toBe(
      404,
    );
    const before = await counts();
    const generation = await system.api('POST', '/v1/generations', {
      avatar_id: avatar.body.id,
      prompt: 'x',
    });
    expect(generation.status).toBe(409);
    expect(await counts()).toEqual(before);
  });
});

describe('training overrides and the audit log', () => {
  it('refuses a bad override with 422 naming the field, and writes nothing', async () => {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 'o',
      training_type: 'portrait',
      images_data_url: 'https://example.test/photos.zip',
    });
    const before = await counts();
    const answer = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, {
      preset: 'fast',
      overrides: { steps: -5 },
    });
    expect(answer.status).toBe(422);
    expect(answer.type).toContain('application/problem+json');
    expect(answer.body.errors.map((e: { path: string }) => e.path)).toContain('steps');
    expect(await counts()).toEqual(before);
    expect((await system.api('GET', `/v1/avatars/${avatar.body.id}`)).body.status).toBe('draft');
  });

  it('audits who did what with which key id, never the key itself', async () => {
    const avatar = await system.api('POST', '/v1/avatars', { name: 'audited', training_type: 'style' });
    const { rows } = await system.db.query(
      `SELECT a.tenant_id, a.action, k.tenant_id AS key_tenant, a.at FROM audit_log a
       JOIN api_keys k ON k.id = a.api_key_id WHERE a.row_id = $1`,
      [avatar.body.id],
    );
    expect(rows).toEqual([
      { tenant_id: 'acme', action: 'avatar.create', key_tenant: 'acme', at: expect.any(Date) },
    ]);
    const { rows: leaks } = await system.db.query(
      'SELECT count(*)::int AS n FROM audit_log WHERE detail::text LIKE $1 OR detail::text LIKE $2',
      [`%${KEYS.acme}%`, `%${KEYS.globex}%`],
    );
    expect(leaks[0].n).toBe(0);
  });
});

describe('Idempotency-Key', () => {
  it('ten concurrent requests with one key make one training and one job, and ten identical answers', async () => {
    const zip = await uploadPhotos(system.sim.connection, 3);
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 'i',
      training_type: 'portrait',
      images_data_url: zip,
    });
    const headers = { 'idempotency-key': 'train-once-1' };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () =>
        system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' }, KEYS.acme, headers),
      ),
    );
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([202]));
    expect(new Set(answers.map((a) => JSON.stringify(a.body))).size).toBe(1);
    const { rows } = await system.db.query('SELECT id FROM trainings WHERE avatar_id = $1', [avatar.body.id]);
    expect(rows).toHaveLength(1);
    await waitFor(
      async () => (await system.api('GET', `/v1/avatars/${avatar.body.id}`)).body.status === 'ready',
      20_000,
    );
    const submits = system.sim.requests().filter((r) => r.input.images_data_url === zip);
    expect(submits).toHaveLength(1);

    const reused = await system.api(
      'POST',
      `/v1/avatars/${avatar.body.id}/trainings`,
      { preset: 'quality' },
      KEYS.acme,
      headers,
    );
    expect(reused.status).toBe(422);
    expect(reused.body.detail).toContain('different request body');
  });
});

describe('a training request with no body', () => {
  it('is accepted with every default: no body and no content type answer 202', async () => {
    const zip = await uploadPhotos(system.sim.connection, 3);
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 'n',
      training_type: 'portrait',
      images_data_url: zip,
    });
    const res = await fetch(`${system.gateway.url}/v1/avatars/${avatar.body.id}/trainings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.acme}` },
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'queued', preset: 'balanced' });
  });
});

describe('Idempotency-Key, canonical and crash-safe', () => {
  it('the same body with its keys in another order is the same request: one row, the first answer', async () => {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 'k',
      training_type: 'portrait',
      images_data_url: 'https://example.test/photos.zip',
    });
    const headers = { 'idempotency-key': 'reordered-1' };
    const route = `/v1/avatars/${avatar.body.id}/trainings`;
    const first = await system.api(
      'POST',
      route,
      '{"preset":"fast","trigger_phrase":"TOK"}',
      KEYS.acme,
      headers,
    );
    const second = await system.api(
      'POST',
      route,
      '{ "trigger_phrase": "TOK", "preset": "fast" }',
      KEYS.acme,
      headers,
    );
    expect(first.status).toBe(202);
    expect(second).toEqual(first);
    const { rows } = await system.db.query('SELECT id FROM trainings WHERE avatar_id = $1', [avatar.body.id]);
    expect(rows).toEqual([{ id: first.body.id }]);
  });

  it('a claim left unanswered by a request that died is freed after a minute: the retry proceeds', async () => {
    const avatar = await system.api('POST', '/v1/avatars', {
      name: 's',
      training_type: 'portrait',
      images_data_url: 'https://example.test/photos.zip',
    });
    const route = `/v1/avatars/${avatar.body.id}/trainings`;
    const headers = { 'idempotency-key': 'crashed-1' };
    // What a gateway killed between claiming the key and answering leaves behind.
    await system.db.query(
      `INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at)
       VALUES ('acme', 'crashed-1', 'whatever the dead request hashed', now() - interval '2 minutes')`,
    );
    const retry = await system.api('POST', route, { preset: 'fast' }, KEYS.acme, headers);
    expect(retry.status).toBe(202);
    const { rows } = await system.db.query(
      "SELECT status_code FROM idempotency_keys WHERE tenant_id = 'acme' AND key = 'crashed-1'",
    );
    expect(rows).toEqual([{ status_code: 202 }]);
  });
});

describe('binding completions by the signed request id', () => {
  it("a real delivery for training A, replayed under training B's URL, leaves B unchanged", async () => {
    const connection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
    const portraitQueue = new Queue(QUEUES.trainPortrait, { connection, prefix: system.prefix });
    const events = new Queue(QUEUES.falEvents, { connection, prefix: system.prefix });
    try {
      const a = await readyAvatar();
      const trainingA = (await system.api('GET', `/v1/trainings/${a.training.id}`)).body;
      expect(trainingA.status).toBe('completed');
      const requestId = trainingA.fal_request_id as string;
      // A's genuine, signed delivery, as fal-sim sent it to webhook-ingest.
      const delivery = proxy.deliveries.find((d) => JSON.parse(d.raw.toString()).request_id === requestId);
      expect(delivery).toBeDefined();

      // B is held in `queued` (its workers paused), so nothing but the replay could change it.
      await portraitQueue.pause();
      const b = await system.api('POST', '/v1/avatars', {
        name: 'b',
        training_type: 'portrait',
        images_data_url: a.zip,
      });
      const trainingB = await system.api('POST', `/v1/avatars/${b.body.id}/trainings`, { preset: 'fast' });
      expect(trainingB.status).toBe(202);
      const rowB = async () =>
        (await system.db.query('SELECT * FROM trainings WHERE id = $1', [trainingB.body.id])).rows[0];
      const transitionsB = async () =>
        (
          await system.db.query('SELECT * FROM transitions WHERE row_id = $1 ORDER BY id', [
            trainingB.body.id,
          ])
        ).rows;
      const before = { row: await rowB(), transitions: await transitionsB() };

      // A day later the fast dedupe layers (ingest's seen key, the event's job id) have forgotten A: the replay
      // reaches the recorder, the durable layer under test.
      await connection.del(`${system.prefix}:fal-webhook-seen:${requestId}`);
      const eventJobId = `evt:completed:${requestId}`;
      await (await events.getJob(eventJobId))?.remove();
      const headers = Object.fromEntries(
        Object.entries(delivery!.headers).filter(([k]) => k.startsWith('x-fal-webhook-')),
      ) as Record<string, string>;
      const replay = await fetch(system.ingestUrl(`entity=training&id=${trainingB.body.id}`), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: new Uint8Array(delivery!.raw),
      });
      expect(replay.status).toBe(200);
      const recorded = await waitFor(
        async () => {
          const job = await events.getJob(eventJobId);
          return job && (await job.isCompleted()) ? job : undefined;
        },
        10_000,
        'the recorder to apply the replayed delivery',
      );
      expect(recorded.data).toMatchObject({ id: trainingB.body.id, falRequestId: requestId });
      expect(recorded.returnvalue).toBe('unchanged: already terminal');

      expect({ row: await rowB(), transitions: await transitionsB() }).toEqual(before);
      expect((await system.api('GET', `/v1/trainings/${a.training.id}`)).body).toEqual(trainingA);
    } finally {
      await portraitQueue.resume();
      await Promise.all([portraitQueue.close(), events.close()]);
      connection.disconnect();
    }
  });
});

describe('Bull Board', () => {
  it('answers 200 with the admin key and 401 without', async () => {
    const url = `${system.gateway.url}/admin/queues`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const page = await fetch(url, { headers: { authorization: 'Bearer admin-key-for-tests' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const basic = Buffer.from('ops:admin-key-for-tests').toString('base64');
    const api = await fetch(`${url}/api/queues`, { headers: { authorization: `Basic ${basic}` } });
    expect(api.status).toBe(200);
    const names = ((await api.json()) as { queues: Array<{ name: string }> }).queues
      .map((q) => q.name)
      .sort();
    expect(names).toEqual(['fal-events', 'gateway-sweep', 'generate', 'train-portrait', 'train-pro']);
  });
});
