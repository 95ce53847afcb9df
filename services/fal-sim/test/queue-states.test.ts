import { createFal } from '@aisha/shared';
import { startFalSim, type FalSim } from '@aisha/fal-sim';
import { waitFor } from '@aisha/testkit';

// The raw HTTP of the queue API, as fal-contract.md describes it: the codes and shapes the client relies on.
// Runs are long here (a minute), so each state can be looked at; `endpointMs` makes flux-lora instant.
let sim: FalSim;
beforeAll(async () => {
  sim = await startFalSim({
    queueMs: 0,
    trainingMs: 60_000,
    generationMs: 60_000,
    endpointMs: { 'fal-ai/flux-lora': 0 },
  });
});
afterAll(() => sim.stop());

const ULTRA = { prompt: 'TOK', finetune_id: 'ft-1', finetune_strength: 1 };

async function call(method: string, path: string, body?: unknown, key = sim.key) {
  const res = await fetch(`${sim.url}/${path}`, {
    method,
    headers: { authorization: `Key ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('queue API states over HTTP', () => {
  it('answers a submit with the request id and its URLs under the owner/alias', async () => {
    const { status, body } = await call('POST', 'fal-ai/flux-pro/v1.1-ultra-finetuned', ULTRA);
    expect(status).toBe(200);
    const id = body.request_id as string;
    expect(body).toMatchObject({
      request_id: expect.any(String),
      gateway_request_id: expect.any(String),
      status: 'IN_QUEUE',
      queue_position: expect.any(Number),
      response_url: `${sim.url}/fal-ai/flux-pro/requests/${id}`,
      status_url: `${sim.url}/fal-ai/flux-pro/requests/${id}/status`,
      cancel_url: `${sim.url}/fal-ai/flux-pro/requests/${id}/cancel`,
    });
    await call('PUT', `fal-ai/flux-pro/requests/${id}/cancel`);
  });

  it('answers 202 while queued, with the queue position', async () => {
    const queued = await startFalSim({ queueMs: 60_000 });
    try {
      const fal = createFal(queued.connection);
      const first = await fal.submit('fal-ai/flux-lora', { prompt: 'a' });
      const second = await fal.submit('fal-ai/flux-lora', { prompt: 'b' });
      const res = await fetch(`${queued.url}/fal-ai/flux-lora/requests/${second.requestId}/status`, {
        headers: { authorization: `Key ${queued.key}` },
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ status: 'IN_QUEUE', queue_position: 1 });
      expect(first.queuePosition).toBe(0);
    } finally {
      await queued.stop();
    }
  });

  it('answers 202 while running, with log lines only when logs=1, and refuses the result until done', async () => {
    const { body } = await call('POST', 'fal-ai/flux-pro/v1.1-ultra-finetuned', ULTRA);
    const path = `fal-ai/flux-pro/requests/${body.request_id as string}`;
    const running = await waitFor(async () => {
      const answer = await call('GET', `${path}/status?logs=1`);
      return answer.body.status === 'IN_PROGRESS' ? answer : undefined;
    });
    expect(running.status).toBe(202);
    expect(running.body.logs).toEqual([expect.objectContaining({ message: 'Starting run', level: 'INFO' })]);
    expect((await call('GET', `${path}/status?logs=0`)).body.logs).toEqual([]);

    const early = await call('GET', path);
    expect(early.status).toBe(400);
    expect(early.body).toEqual({ detail: 'Request is still in progress' });

    expect((await call('PUT', `${path}/cancel`)).status).toBe(202);
    const done = await call('GET', `${path}/status`);
    expect(done).toMatchObject({ status: 200, body: { status: 'COMPLETED' } });
  });

  it('answers 200 COMPLETED with metrics, and runs each endpoint for its own duration', async () => {
    const fal = createFal(sim.connection);
    const slow = await fal.submit('fal-ai/flux-pro/v1.1-ultra-finetuned', ULTRA);
    const quick = await fal.submit('fal-ai/flux-lora', { prompt: 'x' });
    const done = await waitFor(async () => {
      const answer = await call('GET', `fal-ai/flux-lora/requests/${quick.requestId}/status?logs=1`);
      return answer.body.status === 'COMPLETED' ? answer : undefined;
    });
    expect(done.status).toBe(200);
    expect(done.body.metrics).toEqual({ inference_time: expect.any(Number) });
    expect((await fal.status('fal-ai/flux-pro/v1.1-ultra-finetuned', slow.requestId)).status).not.toBe(
      'COMPLETED',
    );
    await fal.cancel('fal-ai/flux-pro/v1.1-ultra-finetuned', slow.requestId);
  });

  it('finds a request only under its own app, and knows only the registry endpoints', async () => {
    const { body } = await call('POST', 'fal-ai/flux-lora', { prompt: 'x' });
    const other = await call('GET', `fal-ai/flux-pro/requests/${body.request_id as string}/status`);
    expect(other.status).toBe(404);
    expect(other.body.detail).toContain('not found');
    const unknown = await call('POST', 'fal-ai/fast-sdxl', { prompt: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.detail).toBe("Application 'fal-ai/fast-sdxl' not found");
  });

  it('answers a body that is not JSON as FastAPI does: 422 json_invalid', async () => {
    const answer = await call('POST', 'fal-ai/flux-lora', '{"prompt": ');
    expect(answer.status).toBe(422);
    expect(answer.body).toEqual({
      detail: [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }],
    });
  });

  it('never closes an idle keep-alive connection itself (no spurious resets of a reused socket)', async () => {
    const res = await fetch(`${sim.url}/healthz`);
    expect(res.headers.get('connection')).toBe('keep-alive');
    // Node advertises (and enforces) `Keep-Alive: timeout=5` unless the server's idle timeout is off.
    expect(res.headers.get('keep-alive')).toBeNull();
  });

  it('rejects a missing or wrong key on every queue call with 401 {detail}', async () => {
    const { body } = await call('POST', 'fal-ai/flux-lora', { prompt: 'x' });
    const path = `fal-ai/flux-lora/requests/${body.request_id as string}`;
    for (const [method, p] of [
      ['POST', 'fal-ai/flux-lora'],
      ['GET', `${path}/status`],
      ['GET', path],
      ['PUT', `${path}/cancel`],
    ] as const) {
      const answer = await call(method, p, method === 'POST' ? { prompt: 'x' } : undefined, 'wrong');
      expect(answer.status).toBe(401);
      expect(typeof answer.body.detail).toBe('string');
    }
  });
});
