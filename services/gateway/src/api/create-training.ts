import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ZodError } from 'zod';
import {
  buildTrainingInput,
  problem,
  validationProblem,
  type CreateTrainingBody,
  type Logger,
} from '@aisha/shared';
import type { Caller } from '../api-keys';
import { insertQueuedRow } from '../audit';
import { inTransaction } from '../db/database';
import { imagesUrlProblem, type ApiDeps } from './api-deps';
import { problemAnswer, type Answer, type SaveAnswer } from './idempotency';
import { trainingJson } from './rows';

type Row = Record<string, unknown> & { id: string; training_type: string; images_data_url: string | null };

/**
 * `POST /v1/avatars/:id/trainings`, the story: find the caller's avatar, check the photos URL and the preset with
 * its overrides (the worker's own builder), commit the row with the avatar moving to `training`, then enqueue.
 */
export async function createTraining(
  deps: ApiDeps,
  caller: Caller,
  avatarId: string,
  body: CreateTrainingBody,
  log: Logger,
  saveAnswer: SaveAnswer,
): Promise<Answer> {
  const checked = await checkRequest(deps, caller, avatarId, body);
  if ('status' in checked) return checked;
  const { avatar, imagesUrl } = checked;
  const row = await insertTraining(deps.pool, caller, avatar, imagesUrl, body, saveAnswer);
  if (!row) return problemAnswer(problem(409, `avatar ${avatar.id} is already training`));
  await deps.jobs.training(row, log);
  return accepted(row);
}

async function checkRequest(
  deps: ApiDeps,
  caller: Caller,
  avatarId: string,
  body: CreateTrainingBody,
): Promise<Answer | { avatar: Row; imagesUrl: string }> {
  const { rows: avatars } = await deps.pool.query('SELECT * FROM avatars WHERE id = $1 AND tenant_id = $2', [
    avatarId,
    caller.tenantId,
  ]);
  const avatar = avatars[0];
  if (!avatar) return problemAnswer(problem(404, `avatar ${avatarId} not found`));
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
  return { avatar, imagesUrl };
}

// The row and the avatar's move to `training` commit together; an avatar already training is a 409.
async function insertTraining(
  pool: pg.Pool,
  caller: Caller,
  avatar: Row,
  imagesUrl: string,
  body: CreateTrainingBody,
  saveAnswer: SaveAnswer,
): Promise<Row | undefined> {
  return inTransaction(pool, async (db) => {
    const { rows: locked } = await db.query('SELECT status FROM avatars WHERE id = $1 FOR UPDATE', [
      avatar.id,
    ]);
    if (locked[0]?.status === 'training') return undefined;
    const row = await insertQueuedRow<Row>(
      db,
      'trainings',
      {
        id: `tr_${randomUUID()}`,
        tenant_id: caller.tenantId,
        avatar_id: avatar.id,
        training_type: avatar.training_type,
        preset: body.preset,
        trigger_phrase: body.trigger_phrase ?? null,
        images_data_url: imagesUrl,
        overrides: body.overrides ? JSON.stringify(body.overrides) : null,
      },
      { caller, action: 'training.create', detail: { avatar_id: avatar.id, preset: body.preset } },
    );
    await db.query("UPDATE avatars SET status = 'training', error = NULL, updated_at = now() WHERE id = $1", [
      avatar.id,
    ]);
    // The Idempotency-Key's answer commits with the row: a retry then replays it, never makes a second training.
    await saveAnswer?.(db, accepted(row));
    return row;
  });
}

const accepted = (row: Row): Answer => ({ status: 202, body: trainingJson(row) });
