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

/**
 * fal's webhook signing keys (ED25519, `kty: OKP`), fetched from the JWKS URL and cached. Keys older than
 * `maxAgeMs` are never used, even when the refresh fails: a delivery then gets 503 and fal retries it later.
 */
export class JwksCache {
  private keys: KeyObject[] = [];
  private fetchedAt = 0;
  private lastFailureAt = -Infinity;
  private lastUnknownSignatureRefreshAt = -Infinity;
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

  /** The cached keys, fetched first when missing or too old; none while they are too old and cannot be fetched. */
  async current(): Promise<KeyObject[]> {
    // Deliveries arriving while a fetch runs wait for it, rather than finding no key (and a 503).
    if (this.inflight) await this.inflight;
    else if (!this.fresh() && this.now() - this.lastFailureAt >= this.options.failureTtlMs)
      await this.refresh();
    return this.fresh() ? this.keys : [];
  }

  /**
   * Called when no cached key verifies a signature: fal may have rotated its keys. Returns whether keys changed.
   * The cooldown counts only from refreshes caused this way, so a key rotated just after start is still fetched.
   */
  async refreshAfterUnknownSignature(): Promise<boolean> {
    if (this.now() - this.lastUnknownSignatureRefreshAt < this.options.minRefreshIntervalMs) return false;
    this.lastUnknownSignatureRefreshAt = this.now();
    const before = this.fetchedAt;
    await this.refresh();
    return this.fetchedAt !== before;
  }

  status(): { loaded: boolean; error?: string } {
    return { loaded: this.fresh(), ...(this.lastError ? { error: this.lastError } : {}) };
  }

  private fresh(): boolean {
    return this.keys.length > 0 && this.now() - this.fetchedAt <= this.options.maxAgeMs;
  }

  private refresh(): Promise<void> {
    this.inflight ??= this.load().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async load(): Promise<void> {
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
      this.lastFailureAt = this.now();
      const stale =
        this.keys.length > 0 && !this.fresh()
          ? ' (the cached keys are older than the maximum age: not used)'
          : '';
      this.lastError = `could not load fal's JWKS from ${this.url}: ${(err as Error).message}${stale}`;
      this.onRefresh('error');
    }
  }
}
