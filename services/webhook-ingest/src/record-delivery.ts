import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  EVENT_JOB_OPTIONS,
  JOBS,
  falEvent,
  falEventJobId,
  submissionNonceKey,
  webhookOutcome,
  type Entity,
  type FalEvent,
  type FalWebhookBody,
} from '@aisha/shared';

export interface DeliveryHints {
  /** From the webhook URL, which fal does not sign: passed on as hints, never as identity. */
  entity?: Entity;
  id?: string;
  /** The submit's nonce (see shared/fal/submission-nonce.ts): lets a retried job adopt this request. */
  nonce?: string;
}

/** Another ingest process is recording the same delivery right now: answer 503, and fal's retry sees the outcome. */
export class DeliveryInFlightError extends Error {
  constructor(requestId: string) {
    super(`delivery of ${requestId} is being recorded by another webhook-ingest; retry later`);
  }
}

/**
 * Turns one verified delivery into at most one event on `fal-events`. Two dedupe layers: a Redis key per fal
 * request id (fast, short-lived) and the event's job id `evt:<type>:<request id>`; the recorder's guarded SQL
 * transitions are the durable third. A copy that arrives while the first is being recorded gets the first's
 * outcome: `duplicate` once it is recorded, a 503 if recording failed (the claim is then released, so fal's retry
 * of either copy is accepted, not taken for a duplicate).
 */
export class DeliveryRecorder {
  /** Recordings in progress in this process, by fal request id. */
  private readonly recording = new Map<string, Promise<'accepted' | 'duplicate'>>();

  constructor(
    private readonly redis: Redis,
    private readonly events: Queue,
    private readonly prefix: string,
    private readonly seenTtlS = 24 * 3600,
    // Held while the event is being added: if we crash in between, fal's retry is not taken for a duplicate.
    private readonly claimTtlS = 10,
    // As long as a job may be retried (BullMQ keeps failed jobs 7 days).
    private readonly nonceTtlS = 7 * 24 * 3600,
  ) {}

  async record(
    body: FalWebhookBody,
    hints: DeliveryHints,
    now = new Date(),
  ): Promise<'accepted' | 'duplicate'> {
    const first = this.recording.get(body.request_id);
    if (first) {
      await first; // rejects as the first copy did, so this copy gets a 503 too
      return 'duplicate';
    }
    const recording = this.recordOnce(body, hints, now).finally(() => this.recording.delete(body.request_id));
    this.recording.set(body.request_id, recording);
    return recording;
  }

  private async recordOnce(
    body: FalWebhookBody,
    hints: DeliveryHints,
    now: Date,
  ): Promise<'accepted' | 'duplicate'> {
    if (hints.nonce) {
      await this.redis.set(
        submissionNonceKey(this.prefix, hints.nonce),
        body.request_id,
        'EX',
        this.nonceTtlS,
        'NX',
      );
    }
    const seenKey = `${this.prefix}:fal-webhook-seen:${body.request_id}`;
    const claimed = await this.redis.set(seenKey, 'in-flight', 'EX', this.claimTtlS, 'NX');
    if (claimed === null) {
      if ((await this.redis.get(seenKey)) === 'in-flight') throw new DeliveryInFlightError(body.request_id);
      return 'duplicate';
    }
    try {
      const event = toEvent(body, hints, now);
      await this.events.add(JOBS.falEvent, event, { ...EVENT_JOB_OPTIONS, jobId: falEventJobId(event) });
    } catch (err) {
      await this.redis.del(seenKey).catch(() => undefined);
      throw err;
    }
    await this.redis.set(seenKey, 'recorded', 'EX', this.seenTtlS);
    return 'accepted';
  }
}

export function toEvent(body: FalWebhookBody, hints: DeliveryHints, now: Date): FalEvent {
  const outcome = webhookOutcome(body);
  return falEvent.parse({
    type: outcome.ok ? 'completed' : 'failed',
    entity: hints.entity,
    id: hints.id,
    falRequestId: body.request_id,
    at: now.toISOString(),
    source: 'webhook',
    ...(outcome.ok
      ? { output: outcome.output }
      : { error: { message: outcome.message, detail: outcome.detail } }),
  });
}
