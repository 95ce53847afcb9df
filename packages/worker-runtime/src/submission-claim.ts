import type { Redis } from 'ioredis';
import { falSubmission, type FalSubmission } from '@aisha/shared';

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

  private key(jobId: string): string {
    return `${this.prefix}:fal-submission:${this.queue}:${jobId}`;
  }
}
