import type pg from 'pg';
import type { Caller } from './api-keys';

/** Who did what, when, with which key (its id, never the key itself). */
export async function audit(
  db: pg.Pool | pg.PoolClient,
  caller: Caller | undefined,
  action: string,
  entity: string,
  rowId: string,
  detail?: object,
): Promise<void> {
  await db.query(
    'INSERT INTO audit_log (tenant_id, api_key_id, action, entity, row_id, detail) VALUES ($1, $2, $3, $4, $5, $6)',
    [
      caller?.tenantId ?? null,
      caller?.apiKeyId ?? null,
      action,
      entity,
      rowId,
      detail ? JSON.stringify(detail) : null,
    ],
  );
}

/** One row of the transition history: every status change of every row, with what caused it. */
export async function recordTransition(
  db: pg.Pool | pg.PoolClient,
  entity: string,
  rowId: string,
  from: string | null,
  to: string,
  source: string,
  falRequestId?: string,
): Promise<void> {
  await db.query(
    'INSERT INTO transitions (entity, row_id, from_status, to_status, source, fal_request_id) VALUES ($1, $2, $3, $4, $5, $6)',
    [entity, rowId, from, to, source, falRequestId ?? null],
  );
}
