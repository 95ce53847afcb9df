import type { FalWebhookBody, Logger } from '@aisha/shared';
import type { FaultInjector } from './faults';
import type { WebhookSigner } from './signing';

export const WEBHOOK_TRIES = 10;

export type WebhookBody = FalWebhookBody;

export interface DeliveryStats {
  attempts: number;
  delivered: number;
  failedAttempts: number;
  abandoned: number;
}

/**
 * Delivers webhooks as fal does: POST JSON, signed, 15 s timeout, any non-2xx is a failure, retried 10 times with
 * doubling delays. Faults may drop, duplicate, delay, reorder or mis-sign a delivery.
 */
export class WebhookDelivery {
  readonly stats: DeliveryStats = { attempts: 0, delivered: 0, failedAttempts: 0, abandoned: 0 };
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  /**
   * Bumped by `stop()`: an attempt started before it ends silently, so that a delivery aborted by a reset is
   * neither counted in the fresh stats nor retried into the next test.
   */
  private generation = 0;

  constructor(
    private readonly signer: WebhookSigner,
    private readonly faults: FaultInjector,
    private readonly log: Logger,
    private readonly timing: () => { retryBaseMs: number; timeoutMs: number },
  ) {}

  send(url: string, body: WebhookBody): void {
    const plan = this.faults.webhookPlan();
    if (plan.drop) {
      this.log.info({ requestId: body.request_id }, 'webhook dropped (fault)');
      return;
    }
    const raw = Buffer.from(JSON.stringify(body));
    for (const delayMs of plan.delaysMs) {
      this.later(delayMs, () => this.attempt(url, body.request_id, raw, 1, plan.badSignature));
    }
  }

  stop(): void {
    this.generation += 1;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const controller of this.inFlight) controller.abort();
  }

  resetStats(): void {
    Object.assign(this.stats, { attempts: 0, delivered: 0, failedAttempts: 0, abandoned: 0 });
  }

  private async attempt(
    url: string,
    requestId: string,
    raw: Buffer,
    tryNumber: number,
    badSignature: boolean,
  ) {
    const generation = this.generation;
    this.stats.attempts += 1;
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(() => controller.abort(), this.timing().timeoutMs);
    let outcome: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...this.signer.headersFor(requestId, raw, { badSignature }),
        },
        body: new Uint8Array(raw),
        signal: controller.signal,
      });
      await res.arrayBuffer().catch(() => undefined);
      if (generation !== this.generation) return;
      if (res.ok) {
        this.stats.delivered += 1;
        return;
      }
      outcome = `answered ${res.status}`;
    } catch (err) {
      outcome = (err as Error).name === 'AbortError' ? 'timed out' : (err as Error).message;
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
    }
    if (generation !== this.generation) return;
    this.stats.failedAttempts += 1;
    if (tryNumber >= WEBHOOK_TRIES) {
      this.stats.abandoned += 1;
      this.log.warn({ requestId, url, outcome }, 'webhook abandoned after 10 tries');
      return;
    }
    const delay = this.timing().retryBaseMs * 2 ** (tryNumber - 1);
    this.log.info({ requestId, outcome, tryNumber, delay }, 'webhook delivery failed; will retry');
    this.later(delay, () => this.attempt(url, requestId, raw, tryNumber + 1, badSignature));
  }

  private later(ms: number, run: () => Promise<void>) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void run();
    }, ms);
    this.timers.add(timer);
  }
}
