import { createFal } from '@aisha/shared';
import { startWebhookReceiver, waitFor } from '@aisha/testkit';
import { KEYS, startSystem, uploadPhotos, type System } from './system-harness';

let system: System;
beforeAll(async () => {
  system = await startSystem({ sim: { trainingMs: 30 } });
});
afterAll(() => system.stop());

const counts = async () => {
  const { rows } = await system.db.query(
    `SELECT (SELECT count(*) FROM avatars)::int AS avatars, (SELECT count(*) FROM trainings)::int AS trainings,
            (SELECT count(*) FROM generations)::int AS generations`,
  );
  return rows[0];
};

async function readyAvatar() {
  const zip = await uploadPhotos(system.sim.connection, 3);
  const avatar = await system.api('POST', '/v1/avatars', {
    name: 'a',
    training_type: 'portrait',
    images_data_url: zip,
  });
  const training = await system.api('POST', `/v1/avatars/${avatar.body.id}/trainings`, { preset: 'fast' });
  await waitFor(
    async () => (await system.api('GET', `/v1/avatars/${avatar.body.id}`)).body.status === 'ready',
    20_000,
  );
  return { avatar: avatar.body, training: training.body, zip };
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

describe('binding completions by the signed request id', () => {
  it("a real delivery for training A, replayed under training B's URL, leaves B unchanged", async () => {
    const receiver = await startWebhookReceiver();
    try {
      const a = await readyAvatar();
      const b = await system.api('POST', '/v1/avatars', {
        name: 'b',
        training_type: 'portrait',
        images_data_url: a.zip,
      });
      const trainingB = await system.api('POST', `/v1/avatars/${b.body.id}/trainings`, { preset: 'fast' });
      // Capture a genuine, signed delivery of A's request.
      const fal = createFal(system.sim.connection);
      const { requestId } = await fal.submit(
        'fal-ai/flux-lora-portrait-trainer',
        { images_data_url: a.zip },
        { webhookUrl: receiver.url },
      );
      const delivery = await waitFor(() => receiver.deliveries.find((d) => d.body.request_id === requestId));
      const ingestUrl = system.ingestUrl(`entity=training&id=${trainingB.body.id}`);
      const headers = Object.fromEntries(
        Object.entries(delivery.headers).filter(([k]) => k.startsWith('x-fal-webhook-')),
      ) as Record<string, string>;
      const before = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [trainingB.body.id]))
        .rows[0];
      const replay = await fetch(ingestUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: new Uint8Array(delivery.raw),
      });
      expect(replay.status).toBe(200);
      // B goes on with its own request; the replayed one is parked, bound to nothing.
      await waitFor(
        async () =>
          (await system.db.query('SELECT 1 FROM parked_events WHERE fal_request_id = $1', [requestId]))
            .rowCount === 1,
      );
      const after = (await system.db.query('SELECT * FROM trainings WHERE id = $1', [trainingB.body.id]))
        .rows[0];
      expect(
        after.fal_request_id === null ||
          after.fal_request_id === before.fal_request_id ||
          after.fal_request_id !== requestId,
      ).toBe(true);
      expect(after.fal_request_id).not.toBe(requestId);
    } finally {
      await receiver.stop();
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
