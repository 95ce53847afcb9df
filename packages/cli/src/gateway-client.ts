import type { Avatar, Generation, ProblemDetails, Training } from '@aisha/shared';

/** The gateway's `/v1` API as the demo uses it; a problem+json answer becomes an error with its detail. */
export class GatewayClient {
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  createAvatar(body: { name: string; training_type: 'portrait' | 'style'; images_data_url: string }) {
    return this.call<Avatar>('POST', '/v1/avatars', body);
  }
  getAvatar(id: string) {
    return this.call<Avatar>('GET', `/v1/avatars/${id}`);
  }
  startTraining(
    avatarId: string,
    body: { preset: 'fast' | 'balanced' | 'quality'; trigger_phrase?: string },
  ) {
    return this.call<Training>('POST', `/v1/avatars/${avatarId}/trainings`, body);
  }
  getTraining(id: string) {
    return this.call<Training>('GET', `/v1/trainings/${id}`);
  }
  generate(body: { avatar_id: string; prompt: string; aspect_ratio?: string }) {
    return this.call<Generation>('POST', '/v1/generations', body);
  }
  getGeneration(id: string) {
    return this.call<Generation>('GET', `/v1/generations/${id}`);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.apiKey}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) {
      let detail = text;
      try {
        detail = (JSON.parse(text) as ProblemDetails).detail;
      } catch {
        /* not problem+json */
      }
      throw new Error(`${method} ${path} answered ${res.status}: ${detail}`);
    }
    return JSON.parse(text) as T;
  }
}
