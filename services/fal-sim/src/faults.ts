import { z } from 'zod';

/**
 * Fault injection. Rates are probabilities per call (0–1). Queue API faults (latency, 429, 5xx, hang) apply to
 * submit, status, result and cancel; storage, files, JWKS and `/_sim/*` are never faulted.
 */
export const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0);

const faultKnobs = {
  latencyMs: ms.default(0),
  rate429: rate.default(0),
  retryAfterS: z.number().min(0).default(1),
  rate5xx: rate.default(0),
  /** The call hangs: no answer until the client gives up (or `hangMs`). */
  rateTimeout: rate.default(0),
  hangMs: ms.default(60_000),
  /** The call takes effect (a submit is accepted, a cancel done), then the connection drops before the answer. */
  lostAnswerRate: rate.default(0),
  /** A run ends COMPLETED with an error result and an ERROR webhook. */
  runFailureRate: rate.default(0),
  webhookDropRate: rate.default(0),
  webhookDuplicateRate: rate.default(0),
  webhookDelayMs: ms.default(0),
  /** Each delivery (and each copy) waits a random 0–webhookDelayMs instead of exactly webhookDelayMs, so deliveries cross. */
  webhookReorder: z.boolean().default(false),
  webhookBadSignatureRate: rate.default(0),
};
export type FaultKnob = keyof typeof faultKnobs;

/**
 * Faults that exclude each other share one draw against cumulative thresholds, so that each configured rate is
 * the observed rate (independent draws in sequence would give a 5 % 503 after a 10 % 429 only 4.5 %).
 */
export const EXCLUSIVE_FAULT_GROUPS = {
  'queue call': ['rate429', 'rate5xx', 'rateTimeout', 'lostAnswerRate'],
  webhook: ['webhookDropRate', 'webhookDuplicateRate'],
} as const satisfies Record<string, readonly FaultKnob[]>;

// Sums such as 0.1 + 0.2 + 0.7 land a hair above 1 in floating point.
const SUM_TOLERANCE = 1e-9;

export const faultSettings = z.strictObject(faultKnobs).superRefine((settings, ctx) => {
  for (const [group, knobs] of Object.entries(EXCLUSIVE_FAULT_GROUPS)) {
    const sum = knobs.reduce((total, knob) => total + settings[knob], 0);
    if (sum > 1 + SUM_TOLERANCE)
      ctx.addIssue({
        code: 'custom',
        path: [knobs[0]],
        message: `${knobs.join(' + ')} must sum to at most 1 (one ${group} gets at most one of these faults), got ${Number(sum.toFixed(6))}`,
      });
  }
});
export type FaultSettings = z.output<typeof faultSettings>;

type WithoutDefaults<Shape extends Record<string, z.ZodDefault>> = {
  [K in keyof Shape]: z.ZodOptional<ReturnType<Shape[K]['unwrap']>>;
};

/**
 * `POST /_sim/faults`: any subset of the knobs. Built without the defaults, because zod 4 fills defaults even
 * inside `.partial()`, which would reset every knob the update leaves out.
 */
export const faultUpdate = z.strictObject(
  Object.fromEntries(
    Object.entries(faultKnobs).map(([knob, schema]) => [knob, schema.unwrap().optional()]),
  ) as WithoutDefaults<typeof faultKnobs>,
);
export type FaultUpdate = z.output<typeof faultUpdate>;

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

  /** The settings after `patch`, checked whole: a patch may break a group's sum only together with the rest. */
  merged(patch: FaultUpdate) {
    return faultSettings.safeParse({ ...this.settings, ...dropUndefined(patch) });
  }

  /** Applies `patch` (throws a ZodError, changing nothing, when the result is invalid). */
  update(patch: FaultUpdate): FaultSettings {
    const next = this.merged(patch);
    if (!next.success) throw next.error;
    this.settings = next.data;
    return this.settings;
  }

  reset(settings: FaultSettings): void {
    this.settings = settings;
    Object.assign(this.counts, zeroCounts());
  }

  /** Draws the fault, if any, for one queue API call. */
  forQueueCall(): HttpFault {
    const s = this.settings;
    return this.drawOne<HttpFault>(
      [
        [s.rate429, 'http429', '429'],
        [s.rate5xx, 'http5xx', '5xx'],
        [s.rateTimeout, 'hangs', 'hang'],
        [s.lostAnswerRate, 'answersLost', 'lost'],
      ],
      'none',
    );
  }

  runFails(): boolean {
    return this.hit(this.settings.runFailureRate, 'runFailures');
  }

  /** How one webhook goes out: dropped, or one delay per copy sent (two when duplicated), and whether mis-signed. */
  webhookPlan(): { drop: boolean; delaysMs: number[]; badSignature: boolean } {
    const s = this.settings;
    const fate = this.drawOne(
      [
        [s.webhookDropRate, 'webhooksDropped', 'drop'],
        [s.webhookDuplicateRate, 'webhooksDuplicated', 'duplicate'],
      ],
      'once',
    );
    if (fate === 'drop') return { drop: true, delaysMs: [], badSignature: false };
    const copies = fate === 'duplicate' ? 2 : 1;
    const delaysMs = Array.from({ length: copies }, () =>
      s.webhookReorder ? Math.floor(this.random() * s.webhookDelayMs) : s.webhookDelayMs,
    );
    // Independent of the drop/duplicate draw: a duplicated webhook may be mis-signed too.
    const badSignature = this.hit(s.webhookBadSignatureRate, 'webhooksBadSignature');
    return { drop: false, delaysMs, badSignature };
  }

  /**
   * One draw against cumulative thresholds: outcome i wins when the draw falls in its slice. No draw at all when
   * every rate is 0, so that a scripted `random` is consumed only by the faults a test turned on.
   */
  private drawOne<T>(outcomes: Array<[probability: number, counter: FaultCounter, outcome: T]>, none: T): T {
    if (outcomes.every(([probability]) => probability <= 0)) return none;
    const draw = this.random();
    let threshold = 0;
    for (const [probability, counter, outcome] of outcomes) {
      threshold += probability;
      if (probability > 0 && draw < threshold) {
        this.counts[counter] += 1;
        return outcome;
      }
    }
    return none;
  }

  private hit(probability: number, counter: FaultCounter): boolean {
    return this.drawOne([[probability, counter, true]], false);
  }
}

function dropUndefined(patch: FaultUpdate): FaultUpdate {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
}

function zeroCounts(): Record<FaultCounter, number> {
  return Object.fromEntries(FAULT_COUNTERS.map((c) => [c, 0])) as Record<FaultCounter, number>;
}
