import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { ZodError } from 'zod';
import {
  buildTrainingInput,
  createAvatarBody,
  createTrainingBody,
  problem,
  sendProblem,
  validationProblem,
} from '@aisha/shared';
import { callerOf } from '../api-keys';
import { audit, recordTransition } from '../audit';
import { inTransaction } from '../db/database';
import { imagesUrlProblem, type ApiDeps } from './api-deps';
import { idempotent, problemAnswer } from './idempotency';
import { avatarJson, trainingJson } from './rows';
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
    const body = parseOr400(createTrainingBody, req.body, res);
    if (!body) return;
    const answer = await idempotent(pool, caller, req, async () => {
      const { rows: avatars } = await pool.query('SELECT * FROM avatars WHERE id = $1 AND tenant_id = $2', [
        req.params.id,
        caller.tenantId,
      ]);
      const avatar = avatars[0];
      if (!avatar) return problemAnswer(problem(404, `avatar ${req.params.id} not found`));
      const imagesUrl: string | null = body.images_data_url ?? avatar.images_data_url;
      if (!imagesUrl) {
        return problemAnswer(
          problem(422, 'images_data_url is required: give it on the avatar or on the training'),
        );
      }
      const urlProblem = imagesUrlProblem(imagesUrl, deps.storageOrigins);
      if (urlProblem)
        return problemAnswer(
          problem(400, urlProblem, { errors: [{ path: 'images_data_url', message: urlProblem }] }),
        );
      try {
        // The same builder the worker runs: a bad override is refused now, not after a fal round trip.
        buildTrainingInput(
          {
            trainingType: avatar.training_type,
            preset: body.preset,
            imagesDataUrl: imagesUrl,
            triggerPhrase: body.trigger_phrase,
            overrides: body.overrides,
            comment: 'validation',
          },
          deps.training.presets,
          deps.training.proTrainerEndpoint,
        );
      } catch (err) {
        if (err instanceof ZodError) return problemAnswer(validationProblem(err, 422));
        throw err;
      }
      const row = await inTransaction(pool, async (db) => {
        const { rows: locked } = await db.query('SELECT status FROM avatars WHERE id = $1 FOR UPDATE', [
          avatar.id,
        ]);
        if (locked[0]?.status === 'training') return undefined;
        const id = `tr_${randomUUID()}`;
        const { rows } = await db.query(
          `INSERT INTO trainings (id, tenant_id, avatar_id, training_type, preset, trigger_phrase, images_data_url, overrides)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
          [
            id,
            caller.tenantId,
            avatar.id,
            avatar.training_type,
            body.preset,
            body.trigger_phrase ?? null,
            imagesUrl,
            body.overrides ? JSON.stringify(body.overrides) : null,
          ],
        );
        await db.query(
          "UPDATE avatars SET status = 'training', error = NULL, updated_at = now() WHERE id = $1",
          [avatar.id],
        );
        await recordTransition(db, 'training', id, null, 'queued', 'api');
        await audit(db, caller, 'training.create', 'training', id, {
          avatar_id: avatar.id,
          preset: body.preset,
        });
        return rows[0];
      });
      if (!row) return problemAnswer(problem(409, `avatar ${avatar.id} is already training`));
      await deps.jobs.training(row, req.log);
      return { status: 202, body: trainingJson(row) };
    });
    send(res, answer);
  });

  return router;
}
