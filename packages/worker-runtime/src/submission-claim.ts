import type { Redis } from 'ioredis';
import { falSubmission, submissionNonceKey, type FalEndpointId, type FalSubmission } from '@aisha/shared';

/** A submit we started: its nonce and when. Written before the call, so that a retry knows to look for it. */
export interface SubmitIntent {
  nonce: string;
  at: string;
  /** Where it was sent, so that a cancel can stop the request once its id is known (absent in older intents). */
  endpoint?: FalEndpointId;
}

/**
 * One fal submission per job, claimed in Redis with SET NX. The job's own data carries the submission too, but a
 * stalled job can run on two workers at once: the claim decides which submission is the job's, and the other
 * becomes a known duplicate to cancel.
 */
export class SubmissionClaims {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queue: string,
    private readonly ttlS = 14 * 24 * 3600,
  ) {}

  async get(jobId: string): Promise<FalSubmission | undefined> {
    const raw = await this.redis.get(this.key(jobId));
    return raw ? falSubmission.parse(JSON.parse(raw)) : undefined;
  }

  /** Returns the submission that owns the job: ours if we were first, else the one already claimed. */
  async claim(jobId: string, submission: FalSubmission): Promise<{ owner: FalSubmission; ours: boolean }> {
    const set = await this.redis.set(this.key(jobId), JSON.stringify(submission), 'EX', this.ttlS, 'NX');
    if (set === 'OK') return { owner: submission, ours: true };
    const owner = await this.get(jobId);
    return owner ? { owner, ours: false } : { owner: submission, ours: true };
  }

  /** The last submit started for the job whose answer may not have reached us. */
  async intent(jobId: string): Promise<SubmitIntent | undefined> {
    const raw = await this.redis.get(this.key(jobId, 'fal-intent'));
    return raw ? (JSON.parse(raw) as SubmitIntent) : undefined;
  }

  async recordIntent(jobId: string, intent: SubmitIntent): Promise<void> {
    await this.redis.set(this.key(jobId, 'fal-intent'), JSON.stringify(intent), 'EX', this.ttlS);
  }

  /** fal answered (with an error): no request was created, nothing to look for. */
  async clearIntent(jobId: string): Promise<void> {
    await this.redis.del(this.key(jobId, 'fal-intent'));
  }

  /** The fal request whose verified webhook carried this nonce (recorded by webhook-ingest), if any came yet. */
  async requestForNonce(nonce: string): Promise<string | undefined> {
    return (await this.redis.get(submissionNonceKey(this.prefix, nonce))) ?? undefined;
  }

  private key(jobId: string, kind = 'fal-submission'): string {
    return `${this.prefix}:${kind}:${this.queue}:${jobId}`;
  }
}
