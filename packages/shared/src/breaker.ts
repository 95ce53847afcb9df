import CircuitBreaker from 'opossum';
import { classifyFalError } from './fal/errors';

/**
 * One opossum breaker per fal endpoint per process. 4xx answers are the caller's fault, not the endpoint's:
 * the error filter keeps them from tripping the breaker (429 and 5xx still count).
 */
export interface BreakerOptions {
  /** opossum's timeout; each call should also carry its own, slightly shorter, AbortSignal. */
  timeoutMs: number;
  errorThresholdPercentage: number;
  resetTimeoutMs: number;
  rollingCountTimeoutMs: number;
  /** Calls in the window before the breaker may open; opossum's default 0 lets one failure open it. */
  volumeThreshold: number;
}

export const BREAKER_DEFAULTS: BreakerOptions = {
  timeoutMs: 15_000,
  errorThresholdPercentage: 50,
  resetTimeoutMs: 30_000,
  rollingCountTimeoutMs: 10_000,
  volumeThreshold: 5,
};

export const BREAKER_STATE = { closed: 0, halfOpen: 1, open: 2 } as const;

type Call = () => Promise<unknown>;
export type FalBreaker = CircuitBreaker<[Call], unknown>;

/** The breaker's error filter: true means "not the endpoint's failure", so it is not counted. */
export function isCallerError(err: unknown): boolean {
  // 429 is a 4xx that still counts: a 429 storm means the endpoint is saturated, and backing off is the point.
  const kind = classifyFalError(err).kind;
  return kind === 'auth' || kind === 'validation' || kind === 'not_found' || kind === 'client';
}

export function createFalBreaker(name: string, options: Partial<BreakerOptions> = {}): FalBreaker {
  const o = { ...BREAKER_DEFAULTS, ...options };
  return new CircuitBreaker<[Call], unknown>((call: Call) => call(), {
    name,
    timeout: o.timeoutMs,
    errorThresholdPercentage: o.errorThresholdPercentage,
    resetTimeout: o.resetTimeoutMs,
    rollingCountTimeout: o.rollingCountTimeoutMs,
    volumeThreshold: o.volumeThreshold,
    errorFilter: isCallerError,
  });
}

export function breakerState(breaker: FalBreaker): number {
  if (breaker.opened) return BREAKER_STATE.open;
  if (breaker.halfOpen) return BREAKER_STATE.halfOpen;
  return BREAKER_STATE.closed;
}

/** Lazily creates and keeps one breaker per endpoint. */
export class BreakerRegistry {
  private readonly breakers = new Map<string, FalBreaker>();
  constructor(
    private readonly options: Partial<BreakerOptions> = {},
    private readonly onCreate: (endpoint: string, breaker: FalBreaker) => void = () => {},
  ) {}

  for(endpoint: string): FalBreaker {
    let breaker = this.breakers.get(endpoint);
    if (!breaker) {
      breaker = createFalBreaker(endpoint, this.options);
      this.breakers.set(endpoint, breaker);
      this.onCreate(endpoint, breaker);
    }
    return breaker;
  }

  /** Runs a fal call through the endpoint's breaker. */
  fire<T>(endpoint: string, call: () => Promise<T>): Promise<T> {
    return this.for(endpoint).fire(call) as Promise<T>;
  }

  entries(): [string, FalBreaker][] {
    return [...this.breakers.entries()];
  }

  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
  }
}
