import { ApiError, ValidationError } from '@fal-ai/client';
import {
  BREAKER_STATE,
  BreakerRegistry,
  FalHttpError,
  FalTransportError,
  breakerState,
  classifyFalError,
  rewriteFalUrl,
} from '@aisha/shared';

describe('fal error classification', () => {
  it('says to check FAL_KEY on 401 and 403, and never retries them', () => {
    for (const status of [401, 403]) {
      const failure = classifyFalError(new ApiError({ message: 'Unauthorized', status, body: {} }));
      expect(failure).toMatchObject({ kind: 'auth', retryable: false });
      expect(failure.message).toContain('check FAL_KEY');
    }
  });

  it('names the fields of a 422', () => {
    const err = new ValidationError({
      message: 'Unprocessable',
      status: 422,
      body: { detail: [{ loc: ['body', 'data_url'], msg: 'field required', type: 'missing' }] },
    });
    expect(classifyFalError(err)).toMatchObject({
      kind: 'validation',
      retryable: false,
      fields: ['data_url'],
      message: 'fal rejected the input (422): data_url: field required',
    });
  });

  it('carries Retry-After on a 429 and retries 5xx and transport failures', () => {
    expect(classifyFalError(new FalHttpError(429, { detail: 'slow down' }, 2_000))).toMatchObject({
      kind: 'rate_limit',
      retryable: true,
      retryAfterMs: 2_000,
    });
    expect(classifyFalError(new FalHttpError(503, '', undefined))).toMatchObject({
      kind: 'transient',
      retryable: true,
    });
    expect(classifyFalError(new FalTransportError('fal unreachable: ECONNREFUSED', false))).toMatchObject({
      kind: 'transient',
    });
    expect(
      classifyFalError(Object.assign(new Error('Breaker is open'), { code: 'EOPENBREAKER' })),
    ).toMatchObject({
      kind: 'breaker_open',
      retryable: true,
    });
  });
});

describe('fal URL rewriting', () => {
  const conn = { queueUrl: 'http://127.0.0.1:8090/', restUrl: 'http://127.0.0.1:8090' };
  it('sends queue and storage calls to the configured hosts', () => {
    expect(rewriteFalUrl('https://queue.fal.run/fal-ai/flux-lora?fal_webhook=x', conn)).toBe(
      'http://127.0.0.1:8090/fal-ai/flux-lora?fal_webhook=x',
    );
    expect(rewriteFalUrl('https://rest.fal.ai/storage/upload/initiate', conn)).toBe(
      'http://127.0.0.1:8090/storage/upload/initiate',
    );
    expect(rewriteFalUrl('https://v3.fal.media/files/a.zip', conn)).toBe('https://v3.fal.media/files/a.zip');
  });
});

describe('per-endpoint breaker', () => {
  const registries: BreakerRegistry[] = [];
  afterAll(() => registries.forEach((r) => r.shutdown()));

  function registry() {
    const r = new BreakerRegistry({ volumeThreshold: 3, resetTimeoutMs: 60_000 });
    registries.push(r);
    return r;
  }

  it('opens on repeated 5xx and then refuses calls without making them', async () => {
    const breakers = registry();
    const failing = () => Promise.reject(new FalHttpError(503, '', undefined));
    for (let i = 0; i < 4; i++) await expect(breakers.fire('fal-ai/flux-lora', failing)).rejects.toThrow();
    expect(breakerState(breakers.for('fal-ai/flux-lora'))).toBe(BREAKER_STATE.open);
    let called = false;
    const refused = await breakers
      .fire('fal-ai/flux-lora', async () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(classifyFalError(refused).kind).toBe('breaker_open');
    // Breakers are per endpoint: another endpoint is unaffected.
    expect(breakerState(breakers.for('fal-ai/flux-pro-trainer'))).toBe(BREAKER_STATE.closed);
  });

  it('never opens on 422s, but opens on 429s (a saturated endpoint)', async () => {
    const breakers = registry();
    const invalid = () =>
      Promise.reject(new ValidationError({ message: 'bad', status: 422, body: { detail: [] } }));
    for (let i = 0; i < 20; i++)
      await expect(breakers.fire('fal-ai/flux-lora', invalid)).rejects.toThrow('bad');
    expect(breakerState(breakers.for('fal-ai/flux-lora'))).toBe(BREAKER_STATE.closed);

    // opossum counts a filtered error as a success, so the 429s go to an endpoint with a fresh window.
    const rateLimited = () => Promise.reject(new FalHttpError(429, { detail: 'slow down' }, 1_000));
    for (let i = 0; i < 4; i++)
      await expect(breakers.fire('fal-ai/flux-pro-trainer', rateLimited)).rejects.toThrow();
    expect(breakerState(breakers.for('fal-ai/flux-pro-trainer'))).toBe(BREAKER_STATE.open);
  });
});
