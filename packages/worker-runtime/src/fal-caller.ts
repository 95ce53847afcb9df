import {
  BreakerRegistry,
  classifyFalError,
  type BreakerOptions,
  type Fal,
  type FalEndpointId,
} from '@aisha/shared';
import type { WorkerMetrics } from './worker-metrics';

export type FalOperation = 'submit' | 'status' | 'result' | 'cancel';

/**
 * Every fal call goes through here: the endpoint's breaker, a deadline of its own (opossum's timeout does not stop
 * the request; the AbortSignal does), and the call metrics. A job's view (`forJob`) also aborts its calls when
 * BullMQ cancels the job, which a shutdown does once its grace period is over.
 */
export class FalCaller {
  private constructor(
    readonly fal: Fal,
    readonly breakers: BreakerRegistry,
    private readonly metrics: () => WorkerMetrics,
    private readonly callTimeoutMs: number,
    private readonly jobSignal?: AbortSignal,
  ) {}

  static create(
    fal: Fal,
    metrics: () => WorkerMetrics,
    callTimeoutMs: number,
    breakerOptions: Partial<BreakerOptions> = {},
  ): FalCaller {
    const breakers = new BreakerRegistry(
      { timeoutMs: callTimeoutMs + 1_000, ...breakerOptions },
      (endpoint, breaker) => breaker.on('open', () => metrics().breakerOpens.inc({ endpoint })),
    );
    return new FalCaller(fal, breakers, metrics, callTimeoutMs);
  }

  /** The same caller (breakers, metrics), whose calls also stop when this job's signal aborts. */
  forJob(signal: AbortSignal | undefined): FalCaller {
    return new FalCaller(this.fal, this.breakers, this.metrics, this.callTimeoutMs, signal);
  }

  /** Whether the job's calls were aborted (the worker is shutting down): the job is to be released, not failed. */
  get jobAborted(): boolean {
    return this.jobSignal?.aborted ?? false;
  }

  async call<T>(
    endpoint: FalEndpointId,
    operation: FalOperation,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timer = this.metrics().falCallSeconds.startTimer({ endpoint, operation });
    const deadline = AbortSignal.timeout(this.callTimeoutMs);
    const signal = this.jobSignal ? AbortSignal.any([deadline, this.jobSignal]) : deadline;
    try {
      const result = await this.breakers.fire(endpoint, () => run(signal));
      this.metrics().falCalls.inc({ endpoint, operation, outcome: 'ok' });
      return result;
    } catch (err) {
      this.metrics().falCalls.inc({ endpoint, operation, outcome: classifyFalError(err).kind });
      throw err;
    } finally {
      timer();
    }
  }
}
