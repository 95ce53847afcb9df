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
 * the request; the AbortSignal does), and the call metrics.
 */
export class FalCaller {
  readonly breakers: BreakerRegistry;

  constructor(
    readonly fal: Fal,
    private readonly metrics: () => WorkerMetrics,
    private readonly callTimeoutMs: number,
    breakerOptions: Partial<BreakerOptions> = {},
  ) {
    this.breakers = new BreakerRegistry(
      { timeoutMs: callTimeoutMs + 1_000, ...breakerOptions },
      (endpoint, breaker) => breaker.on('open', () => this.metrics().breakerOpens.inc({ endpoint })),
    );
  }

  async call<T>(
    endpoint: FalEndpointId,
    operation: FalOperation,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timer = this.metrics().falCallSeconds.startTimer({ endpoint, operation });
    try {
      const result = await this.breakers.fire(endpoint, () => run(AbortSignal.timeout(this.callTimeoutMs)));
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
