import type pg from 'pg';
import type { Logger, TrainingConfig } from '@aisha/shared';
import type { JobEnqueuer } from '../enqueue-jobs';

export interface ApiDeps {
  pool: pg.Pool;
  jobs: JobEnqueuer;
  training: TrainingConfig;
  /** Origins besides https:// from which images_data_url may come (fal storage, fal-sim in simulator mode). */
  storageOrigins: string[];
  log: Logger;
}

/** `images_data_url` must be https, or fal's (or fal-sim's) own storage: never an internal address over http. */
export function imagesUrlProblem(url: string, storageOrigins: string[]): string | undefined {
  const parsed = new URL(url);
  if (parsed.protocol === 'https:') return undefined;
  if (storageOrigins.includes(parsed.origin)) return undefined;
  return `images_data_url must be an https:// URL (or ${storageOrigins.join(', ') || "fal's storage"}), got ${parsed.origin}`;
}
