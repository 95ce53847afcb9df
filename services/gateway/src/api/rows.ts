import type { Avatar, Generation, Training } from '@aisha/shared';

/** Database rows as the API shows them (schemas in packages/shared/src/api.ts). */
type Row = Record<string, unknown>;
const iso = (v: unknown) =>
  v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v);

export function avatarJson(row: Row): Avatar {
  return {
    id: String(row.id),
    name: String(row.name),
    training_type: row.training_type as Avatar['training_type'],
    status: row.status as Avatar['status'],
    images_data_url: (row.images_data_url as string | null) ?? null,
    model: (row.model as Avatar['model']) ?? null,
    error: (row.error as string | null) ?? null,
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}

export function trainingJson(row: Row): Training {
  return {
    id: String(row.id),
    avatar_id: String(row.avatar_id),
    status: row.status as Training['status'],
    preset: row.preset as Training['preset'],
    fal_request_id: (row.fal_request_id as string | null) ?? null,
    fal_endpoint: (row.fal_endpoint as Training['fal_endpoint']) ?? null,
    result: (row.result as Training['result']) ?? null,
    error: (row.error as string | null) ?? null,
    progress: (row.progress as number | null) ?? null,
    attempts: Number(row.attempts ?? 0),
    created_at: iso(row.created_at)!,
    submitted_at: iso(row.submitted_at),
    finished_at: iso(row.finished_at),
  };
}

export function generationJson(row: Row): Generation {
  return {
    id: String(row.id),
    avatar_id: String(row.avatar_id),
    status: row.status as Generation['status'],
    prompt: String(row.prompt),
    fal_request_id: (row.fal_request_id as string | null) ?? null,
    fal_endpoint: (row.fal_endpoint as Generation['fal_endpoint']) ?? null,
    images: (row.images as Generation['images']) ?? [],
    error: (row.error as string | null) ?? null,
    attempts: Number(row.attempts ?? 0),
    created_at: iso(row.created_at)!,
    submitted_at: iso(row.submitted_at),
    finished_at: iso(row.finished_at),
  };
}
