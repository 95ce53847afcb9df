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

type NewRowTable = 'trainings' | 'generations';
const ENTITY_OF: Record<NewRowTable, string> = { trainings: 'training', generations: 'generation' };

/**
 * Inserts a new row with its first transition (→ `queued`) and its audit entry in one statement: atomic on its
 * own, and one PostgreSQL round trip where BEGIN, three INSERTs and COMMIT took five (the API's hot path).
 * `values`' keys are column names written in our code, never the caller's.
 */
export async function insertQueuedRow<Row = Record<string, unknown>>(
  db: pg.Pool | pg.PoolClient,
  table: NewRowTable,
  values: Record<string, unknown>,
  by: { caller: Caller; action: string; detail?: object },
): Promise<Row> {
  const columns = Object.keys(values);
  const n = columns.length;
  const { rows } = await db.query(
    `WITH created AS (
       INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})
       RETURNING *
     ), history AS (
       INSERT INTO transitions (entity, row_id, from_status, to_status, source)
       SELECT $${n + 1}, id, NULL, 'queued', 'api' FROM created
     ), audited AS (
       INSERT INTO audit_log (tenant_id, api_key_id, action, entity, row_id, detail)
       SELECT $${n + 2}, $${n + 3}, $${n + 4}, $${n + 1}, id, $${n + 5} FROM created
     )
     SELECT * FROM created`,
    [
      ...Object.values(values),
      ENTITY_OF[table],
      by.caller.tenantId,
      by.caller.apiKeyId,
      by.action,
      by.detail ? JSON.stringify(by.detail) : null,
    ],
  );
  return rows[0] as Row;
}
