import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

const jwks = z.object({
  keys: z.array(z.object({ kty: z.string(), crv: z.string().optional(), x: z.string().optional() }).loose()),
});

export interface JwksCacheOptions {
  /** fal says to cache the JWKS for at most 24 h. */
  maxAgeMs: number;
  /** A failed fetch is remembered this long, so a flood of deliveries does not hammer fal's JWKS host. */
  failureTtlMs: number;
  /** Refreshes forced by an unknown signature are at most this frequent (bad signatures are cheap to send). */
  minRefreshIntervalMs: number;
  fetchTimeoutMs: number;
}

export const JWKS_DEFAULTS: JwksCacheOptions = {
  maxAgeMs: 24 * 3600_000,
  failureTtlMs: 5_000,
  minRefreshIntervalMs: 30_000,
  fetchTimeoutMs: 5_000,
};

export type RefreshResult = 'ok' | 'error';

/** fal's webhook signing keys (ED25519, `kty: OKP`), fetched from the JWKS URL and cached. */
export class JwksCache {
  private keys: KeyObject[] = [];
  private fetchedAt = 0;
  private lastAttemptAt = 0;
  private lastError: string | undefined;
  private inflight: Promise<void> | undefined;
  private readonly options: JwksCacheOptions;

  constructor(
    private readonly url: string,
    options: Partial<JwksCacheOptions> = {},
    private readonly onRefresh: (result: RefreshResult) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {
    this.options = { ...JWKS_DEFAULTS, ...options };
  }

  /** The cached keys, fetched first when missing or older than the maximum age. */
  async current(): Promise<KeyObject[]> {
    const stale = this.now() - this.fetchedAt > this.options.maxAgeMs;
    // Deliveries arriving while the first fetch runs wait for it, rather than finding no key (and a 503).
    if (this.inflight) await this.inflight;
    else if ((this.keys.length === 0 || stale) && this.mayAttempt(this.options.failureTtlMs))
      await this.refresh();
    return this.keys;
  }

  /** Called when no cached key verifies a signature: fal may have rotated its keys. Returns whether keys changed. */
  async refreshAfterUnknownSignature(): Promise<boolean> {
    if (!this.mayAttempt(this.options.minRefreshIntervalMs)) return false;
    const before = this.fetchedAt;
    await this.refresh();
    return this.fetchedAt !== before;
  }

  status(): { loaded: boolean; error?: string } {
    return { loaded: this.keys.length > 0, ...(this.lastError ? { error: this.lastError } : {}) };
  }

  private mayAttempt(intervalMs: number): boolean {
    return this.now() - this.lastAttemptAt >= intervalMs || this.lastAttemptAt === 0;
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
    this.lastAttemptAt = this.now();
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(this.options.fetchTimeoutMs) });
      if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
      const body = jwks.parse(await res.json());
      const keys = body.keys
        .filter((k) => k.kty === 'OKP' && k.crv === 'Ed25519' && typeof k.x === 'string')
        // fal's `x` sometimes carries base64 padding, which JWK import refuses.
        .map((k) =>
          createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x!.replace(/=+$/, '') }, format: 'jwk' }),
        );
      if (keys.length === 0) throw new Error('JWKS holds no Ed25519 key');
      this.keys = keys;
      this.fetchedAt = this.now();
      this.lastError = undefined;
      this.onRefresh('ok');
    } catch (err) {
      this.lastError = `could not load fal's JWKS from ${this.url}: ${(err as Error).message}`;
      this.onRefresh('error');
    }
  }
}
