import type { Queue } from 'bullmq';
import { EVENT_JOB_OPTIONS, JOBS, falEvent, falEventJobId, type FalEvent } from '@aisha/shared';

/** Emits facts about fal requests onto `fal-events`; the gateway's recorder is the only one to act on them. */
export class EventPublisher {
  constructor(private readonly events: Queue) {}

  async emit(
    event: Omit<FalEvent, 'at' | 'source'> & Partial<Pick<FalEvent, 'at' | 'source'>>,
  ): Promise<void> {
    const full = falEvent.parse({ at: new Date().toISOString(), source: 'worker', ...event });
    await this.events.add(JOBS.falEvent, full, { ...EVENT_JOB_OPTIONS, jobId: falEventJobId(full) });
  }

  /** Whether a `failed` event for this row (not tied to a fal request) is still on the queue. */
  async hasFailed(rowId: string): Promise<boolean> {
    const jobId = falEventJobId({ type: 'failed', id: rowId });
    return jobId !== undefined && (await this.events.getJob(jobId)) !== undefined;
  }
}
