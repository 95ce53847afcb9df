import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  /** Either a duration or a fixed number of requests. */
  durationS?: number;
  amount?: number;
  /**
   * A module (absolute path to a `.js` file) whose export gives each request its headers and body; it runs in
   * autocannon's worker thread, so it cannot be a closure.
   */
  setupRequestModule?: string;
}

export interface LoadResult {
  requests: number;
  ok: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  statusCodes: Record<string, number>;
  durationS: number;
  /** Completed requests per second over the whole run. */
  perSecond: number;
  /** 2xx answers per second over the whole run. */
  okPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
}

/**
 * One autocannon run. The load generator runs in a worker thread of its own (`workers: 1`): the bare baselines
 * live on this process's main thread, and must not share it with the client hammering them.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    headers: options.headers,
    body: options.body,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
    ...(options.setupRequestModule
      ? { requests: [{ method: options.method ?? 'GET', setupRequest: options.setupRequestModule }] }
      : {}),
    workers: 1,
    timeout: 30,
  });
  const requests = result.requests.total;
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, stat]) => [code, stat.count ?? 0]),
  );
  return {
    requests,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes,
    durationS: result.duration,
    perSecond: requests / result.duration,
    okPerSecond: result['2xx'] / result.duration,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
  };
}
