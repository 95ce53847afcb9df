import { randomUUID } from 'node:crypto';
import { FAL_ENDPOINTS, falAppPath, type FalEndpointId } from '@aisha/shared';
import type { FaultInjector } from './faults';
import type { FileStore } from './file-store';
import { produceOutcome, runFailure, type RunOutcome } from './run-output';
import type { WebhookDelivery } from './webhook-delivery';

export type SimStatus = 'IN_QUEUE' | 'IN_PROGRESS' | 'COMPLETED';

interface RequestLog {
  message: string;
  level: 'INFO';
  source: 'USER';
  timestamp: string;
}

/** One request as fal's queue holds it. */
export interface SimRequest {
  requestId: string;
  gatewayRequestId: string;
  endpoint: FalEndpointId;
  input: Record<string, unknown>;
  webhookUrl?: string;
  status: SimStatus;
  cancelled: boolean;
  submittedAt: string;
  startedAt?: string;
  completedAt?: string;
  logs: RequestLog[];
  outcome?: RunOutcome;
  /** How many times a client asked for this request's cancellation. */
  cancelRequests: number;
  /**
   * How many accepted submissions carried this endpoint and this input, this one included: more than 1 means the
   * same work was submitted (and billed) again, e.g. after a lost answer.
   */
  timesSubmitted: number;
}

export interface Durations {
  queueMs: number;
  trainingMs: number;
  generationMs: number;
  /** Run time of one endpoint, over `trainingMs`/`generationMs`. */
  endpointMs: Partial<Record<FalEndpointId, number>>;
}

/** fal's queue: requests move IN_QUEUE → IN_PROGRESS → COMPLETED on timers, then their webhook is sent. */
export class RequestRegistry {
  private readonly requests = new Map<string, SimRequest>();
  /** Requests by endpoint and canonical input, to count repeated submissions of the same work. */
  private readonly sameWork = new Map<string, SimRequest[]>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private seed = 1;

  constructor(
    private readonly files: FileStore,
    private readonly faults: FaultInjector,
    private readonly webhooks: WebhookDelivery,
    private readonly durations: () => Durations,
  ) {}

  submit(endpoint: FalEndpointId, input: Record<string, unknown>, webhookUrl?: string): SimRequest {
    const request: SimRequest = {
      requestId: randomUUID(),
      gatewayRequestId: randomUUID(),
      endpoint,
      input,
      webhookUrl,
      status: 'IN_QUEUE',
      cancelled: false,
      submittedAt: new Date().toISOString(),
      logs: [],
      cancelRequests: 0,
      timesSubmitted: 1,
    };
    this.requests.set(request.requestId, request);
    this.countSameWork(request);
    this.after(this.durations().queueMs, () => this.start(request, this.runMs(endpoint)));
    return request;
  }

  /** Status and result paths carry only owner/alias: the app must match, the sub-path cannot. */
  find(appPath: string, requestId: string): SimRequest | undefined {
    const request = this.requests.get(requestId);
    return request && falAppPath(request.endpoint) === appPath ? request : undefined;
  }

  /** How many requests of the same endpoint wait ahead of this one (the map keeps submission order). */
  queuePosition(request: SimRequest): number {
    let ahead = 0;
    for (const other of this.requests.values()) {
      if (other === request) break;
      if (other.status === 'IN_QUEUE' && other.endpoint === request.endpoint) ahead += 1;
    }
    return ahead;
  }

  /** fal's cancel: queued or running requests are cancelled; finished ones cannot be. */
  cancel(request: SimRequest): 'cancelled' | 'already_completed' {
    request.cancelRequests += 1;
    if (request.status === 'COMPLETED') return 'already_completed';
    request.cancelled = true;
    this.complete(request, runFailure(400, 'Request was cancelled by the user'));
    return 'cancelled';
  }

  list(): SimRequest[] {
    return [...this.requests.values()];
  }

  reset(): void {
    this.stop();
    this.requests.clear();
    this.sameWork.clear();
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private runMs(endpoint: FalEndpointId): number {
    const { trainingMs, generationMs, endpointMs } = this.durations();
    return endpointMs[endpoint] ?? (FAL_ENDPOINTS[endpoint].kind === 'training' ? trainingMs : generationMs);
  }

  private countSameWork(request: SimRequest) {
    const key = `${request.endpoint} ${canonicalJson(request.input)}`;
    const group = [...(this.sameWork.get(key) ?? []), request];
    this.sameWork.set(key, group);
    for (const member of group) member.timesSubmitted = group.length;
  }

  private start(request: SimRequest, runMs: number) {
    if (request.status !== 'IN_QUEUE') return;
    request.status = 'IN_PROGRESS';
    request.startedAt = new Date().toISOString();
    this.log(request, 'Starting run');
    // Progress lines with a percentage, as trainers print them, so that pollers can show one.
    const what = FAL_ENDPOINTS[request.endpoint].kind === 'training' ? 'Training' : 'Generation';
    for (const percent of [25, 50, 75]) {
      this.after((runMs * percent) / 100, () => {
        if (request.status === 'IN_PROGRESS') this.log(request, `${what} progress: ${percent}%`);
      });
    }
    this.after(runMs, () => {
      if (request.status !== 'IN_PROGRESS') return;
      const outcome = this.faults.runFails()
        ? runFailure(500, `${request.endpoint} failed: simulated runner error`)
        : produceOutcome(request.endpoint, request.input, this.files, this.seed++);
      this.complete(request, outcome);
    });
  }

  private complete(request: SimRequest, outcome: RunOutcome) {
    request.status = 'COMPLETED';
    request.completedAt = new Date().toISOString();
    request.outcome = outcome;
    this.log(request, outcome.ok ? 'Run completed' : `Run failed: ${outcome.message}`);
    if (!request.webhookUrl) return;
    this.webhooks.send(request.webhookUrl, {
      request_id: request.requestId,
      gateway_request_id: request.gatewayRequestId,
      ...(outcome.ok
        ? { status: 'OK', payload: outcome.output }
        : { status: 'ERROR', error: outcome.message, payload: outcome.body }),
    });
  }

  private log(request: SimRequest, message: string) {
    request.logs.push({ message, level: 'INFO', source: 'USER', timestamp: new Date().toISOString() });
  }

  private after(ms: number, run: () => void) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    this.timers.add(timer);
  }
}

/** JSON with object keys sorted, so that two equal inputs give the same text whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
