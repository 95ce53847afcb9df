import { Router } from 'express';
import { TERMINAL_STATUSES, problem, sendProblem } from '@aisha/shared';
import { callerOf } from '../api-keys';
import { audit } from '../audit';
import type { ApiDeps } from './api-deps';
import { trainingJson } from './rows';

/** `GET /v1/trainings/:id`, `POST /v1/trainings/:id/cancel`. */
export function trainingRoutes(deps: ApiDeps): Router {
  const router = Router();
  const { pool } = deps;

  router.get('/v1/trainings/:id', async (req, res) => {
    const { rows } = await pool.query('SELECT * FROM trainings WHERE id = $1 AND tenant_id = $2', [
      req.params.id,
      callerOf(res).tenantId,
    ]);
    if (!rows[0]) return sendProblem(res, problem(404, `training ${req.params.id} not found`));
    res.json(trainingJson(rows[0]));
  });

  router.post('/v1/trainings/:id/cancel', async (req, res) => {
    const caller = callerOf(res);
    const { rows } = await pool.query('SELECT * FROM trainings WHERE id = $1 AND tenant_id = $2', [
      req.params.id,
      caller.tenantId,
    ]);
    const row = rows[0];
    if (!row) return sendProblem(res, problem(404, `training ${req.params.id} not found`));
    if ((TERMINAL_STATUSES as readonly string[]).includes(row.status)) {
      return sendProblem(res, problem(409, `training ${row.id} is already ${row.status}`));
    }
    // The worker cancels at fal (or takes the job off the queue) and reports `cancelled`; the recorder moves the row.
    await deps.jobs.cancel(
      {
        entity: 'training',
        id: row.id,
        falRequestId: row.fal_request_id ?? undefined,
        endpoint: row.fal_endpoint ?? undefined,
        reason: 'user',
      },
      deps.jobs.queueOf('training', row.training_type, row.fal_endpoint),
    );
    await audit(pool, caller, 'training.cancel', 'training', row.id);
    res.status(202).json(trainingJson(row));
  });

  return router;
}
