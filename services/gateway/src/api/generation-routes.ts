import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { TERMINAL_STATUSES, createGenerationBody, problem, sendProblem } from '@aisha/shared';
import { callerOf } from '../api-keys';
import { audit, insertQueuedRow } from '../audit';
import type { ApiDeps } from './api-deps';
import { idempotent, insertAnswered, problemAnswer, type Answer } from './idempotency';
import { generationJson } from './rows';
import { parseOr400, send } from './validate';

/** `POST /v1/generations`, `GET /v1/generations/:id`, `POST /v1/generations/:id/cancel`. */
export function generationRoutes(deps: ApiDeps): Router {
  const router = Router();
  const { pool } = deps;

  router.post('/v1/generations', async (req, res) => {
    const caller = callerOf(res);
    const body = parseOr400(createGenerationBody, req.body, res);
    if (!body) return;
    const answer = await idempotent(pool, caller, req, body, async (saveAnswer) => {
      const { rows: avatars } = await pool.query('SELECT * FROM avatars WHERE id = $1 AND tenant_id = $2', [
        body.avatar_id,
        caller.tenantId,
      ]);
      const avatar = avatars[0];
      if (!avatar) return problemAnswer(problem(404, `avatar ${body.avatar_id} not found`));
      // A ready avatar being retrained keeps its earlier model and can generate with it meanwhile.
      if (!avatar.model) {
        return problemAnswer(
          problem(409, `avatar ${avatar.id} is ${avatar.status} and has no model yet: train it first`),
        );
      }
      const { avatar_id: _avatarId, ...params } = body;
      const row = await insertAnswered(
        pool,
        saveAnswer,
        (db) =>
          insertQueuedRow(
            db,
            'generations',
            {
              id: `gen_${randomUUID()}`,
              tenant_id: caller.tenantId,
              avatar_id: avatar.id,
              training_type: avatar.training_type,
              prompt: body.prompt,
              params: JSON.stringify(params),
              model: JSON.stringify(avatar.model),
            },
            { caller, action: 'generation.create', detail: { avatar_id: avatar.id } },
          ),
        accepted,
      );
      await deps.jobs.generation(row, req.log);
      return accepted(row);
    });
    send(res, answer);
  });

  router.get('/v1/generations/:id', async (req, res) => {
    const { rows } = await pool.query('SELECT * FROM generations WHERE id = $1 AND tenant_id = $2', [
      req.params.id,
      callerOf(res).tenantId,
    ]);
    if (!rows[0]) return sendProblem(res, problem(404, `generation ${req.params.id} not found`));
    res.json(generationJson(rows[0]));
  });

  router.post('/v1/generations/:id/cancel', async (req, res) => {
    const caller = callerOf(res);
    const { rows } = await pool.query('SELECT * FROM generations WHERE id = $1 AND tenant_id = $2', [
      req.params.id,
      caller.tenantId,
    ]);
    const row = rows[0];
    if (!row) return sendProblem(res, problem(404, `generation ${req.params.id} not found`));
    if ((TERMINAL_STATUSES as readonly string[]).includes(row.status)) {
      return sendProblem(res, problem(409, `generation ${row.id} is already ${row.status}`));
    }
    await deps.jobs.cancel(
      {
        entity: 'generation',
        id: row.id,
        falRequestId: row.fal_request_id ?? undefined,
        endpoint: row.fal_endpoint ?? undefined,
        reason: 'user',
      },
      deps.jobs.queueOf('generation', undefined, row.fal_endpoint),
    );
    await audit(pool, caller, 'generation.cancel', 'generation', row.id);
    res.status(202).json(generationJson(row));
  });

  return router;
}

const accepted = (row: Record<string, unknown>): Answer => ({ status: 202, body: generationJson(row) });
