import { z } from 'zod';

/**
 * Fault injection. Rates are probabilities per call (0–1). Queue API faults (latency, 429, 5xx, hang) apply to
 * submit, status, result and cancel; storage, files, JWKS and `/_sim/*` are never faulted.
 */
const rate = z.number().min(0).max(1);
export const faultSettings = z.strictObject({
  latencyMs: z.number().int().min(0).default(0),
  rate429: rate.default(0),
  retryAfterS: z.number().min(0).default(1),
  rate5xx: rate.default(0),
  /** The call hangs: no answer until the client gives up (or `hangMs`). */
  rateTimeout: rate.default(0),
  hangMs: z.number().int().min(0).default(60_000),
  /** The call takes effect (a submit is accepted, a cancel done), then the connection drops before the answer. */
  lostAnswerRate: rate.default(0),
  /** A run ends COMPLETED with an error result and an ERROR webhook. */
  runFailureRate: rate.default(0),
  webhookDropRate: rate.default(0),
  webhookDuplicateRate: rate.default(0),
  webhookDelayMs: z.number().int().min(0).default(0),
  /** Each delivery (and each copy) waits a random 0–webhookDelayMs instead of exactly webhookDelayMs, so deliveries cross. */
  webhookReorder: z.boolean().default(false),
  webhookBadSignatureRate: rate.default(0),
});
export type FaultSettings = z.output<typeof faultSettings>;

/** `POST /_sim/faults` merges a partial update into the current settings. */
export const faultUpdate = faultSettings.partial();

export type HttpFault = 'none' | '429' | '5xx' | 'hang' | 'lost';

export const FAULT_COUNTERS = [
  'http429',
  'http5xx',
  'hangs',
  'answersLost',
  'runFailures',
  'webhooksDropped',
  'webhooksDuplicated',
  'webhooksBadSignature',
] as const;
export type FaultCounter = (typeof FAULT_COUNTERS)[number];

export class FaultInjector {
  readonly counts: Record<FaultCounter, number> = zeroCounts();

  constructor(
    public settings: FaultSettings,
    private readonly random: () => number = Math.random,
  ) {}

  update(patch: z.infer<typeof faultUpdate>): FaultSettings {
    this.settings = { ...this.settings, ...patch };
    return this.settings;
  }

  reset(settings: FaultSettings): void {
    this.settings = settings;
    Object.assign(this.counts, zeroCounts());
  }

  /** Draws the fault, if any, for one queue API call. */
  forQueueCall(): HttpFault {
    const s = this.settings;
    if (this.hit(s.rate429, 'http429')) return '429';
    if (this.hit(s.rate5xx, 'http5xx')) return '5xx';
    if (this.hit(s.rateTimeout, 'hangs')) return 'hang';
    if (this.hit(s.lostAnswerRate, 'answersLost')) return 'lost';
    return 'none';
  }

  runFails(): boolean {
    return this.hit(this.settings.runFailureRate, 'runFailures');
  }

  /** How one webhook goes out: dropped, or one delay per copy sent (two when duplicated), and whether mis-signed. */
  webhookPlan(): { drop: boolean; delaysMs: number[]; badSignature: boolean } {
    const s = this.settings;
    if (this.hit(s.webhookDropRate, 'webhooksDropped'))
      return { drop: true, delaysMs: [], badSignature: false };
    const copies = this.hit(s.webhookDuplicateRate, 'webhooksDuplicated') ? 2 : 1;
    const delaysMs = Array.from({ length: copies }, () =>
      s.webhookReorder ? Math.floor(this.random() * s.webhookDelayMs) : s.webhookDelayMs,
    );
    const badSignature = this.hit(s.webhookBadSignatureRate, 'webhooksBadSignature');
    return { drop: false, delaysMs, badSignature };
  }

  private hit(probability: number, counter: FaultCounter): boolean {
    if (probability <= 0 || this.random() >= probability) return false;
    this.counts[counter] += 1;
    return true;
  }
}

function zeroCounts(): Record<FaultCounter, number> {
  return Object.fromEntries(FAULT_COUNTERS.map((c) => [c, 0])) as Record<FaultCounter, number>;
}
