import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { createAvatarBody, createTrainingBody, problem, sendProblem } from '@aisha/shared';
import { callerOf } from '../api-keys';
import { audit } from '../audit';
import { imagesUrlProblem, type ApiDeps } from './api-deps';
import { createTraining } from './create-training';
import { idempotent } from './idempotency';
import { avatarJson } from './rows';
import { parseOr400, send } from './validate';

/** `POST /v1/avatars`, `GET /v1/avatars/:id`, `POST /v1/avatars/:id/trainings`. */
export function avatarRoutes(deps: ApiDeps): Router {
  const router = Router();
  const { pool } = deps;

  router.post('/v1/avatars', async (req, res) => {
    const caller = callerOf(res);
    const body = parseOr400(createAvatarBody, req.body, res);
    if (!body) return;
    const urlProblem = body.images_data_url && imagesUrlProblem(body.images_data_url, deps.storageOrigins);
    if (urlProblem)
      return sendProblem(
        res,
        problem(400, urlProblem, { errors: [{ path: 'images_data_url', message: urlProblem }] }),
      );
    const id = `av_${randomUUID()}`;
    const { rows } = await pool.query(
      'INSERT INTO avatars (id, tenant_id, name, training_type, images_data_url) VALUES ($1, $2, $3, $4, $5) RETURNING *',
      [id, caller.tenantId, body.name, body.training_type, body.images_data_url ?? null],
    );
    await audit(pool, caller, 'avatar.create', 'avatar', id);
    res.status(201).json(avatarJson(rows[0]));
  });

  router.get('/v1/avatars/:id', async (req, res) => {
    const { rows } = await pool.query('SELECT * FROM avatars WHERE id = $1 AND tenant_id = $2', [
      req.params.id,
      callerOf(res).tenantId,
    ]);
    if (!rows[0]) return sendProblem(res, problem(404, `avatar ${req.params.id} not found`));
    res.json(avatarJson(rows[0]));
  });

  router.post('/v1/avatars/:id/trainings', async (req, res) => {
    const caller = callerOf(res);
    // Express 5 leaves req.body undefined without a body or content type; the body is optional (all defaults).
    const body = parseOr400(createTrainingBody, req.body ?? {}, res);
    if (!body) return;
    const answer = await idempotent(pool, caller, req, body, (saveAnswer) =>
      createTraining(deps, caller, req.params.id, body, req.log, saveAnswer),
    );
    send(res, answer);
  });

  return router;
}
