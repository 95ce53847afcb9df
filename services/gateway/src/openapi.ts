import { z } from 'zod';
import {
  avatar,
  createAvatarBody,
  createGenerationBody,
  createTrainingBody,
  generation,
  problemDetails,
  training,
} from '@aisha/shared';

/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests (zod v4's JSON Schema). */
export function openApiDocument(serverUrl = '/'): Record<string, unknown> {
  const input = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const output = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' });
  const json = (ref: string) => ({
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
  });
  const problems = Object.fromEntries(
    ['400', '401', '404', '409', '422', '429'].map((code) => [
      code,
      {
        description: 'A problem (RFC 9457)',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      },
    ]),
  );
  const id = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
  const idempotencyKey = {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    schema: { type: 'string', maxLength: 255 },
  };
  const op = (summary: string, ok: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    summary,
    responses: { ...ok, ...problems },
    ...extra,
  });

  return {
    openapi: '3.1.0',
    info: {
      title: 'Aisha avatar backend',
      version: '0.1.0',
      description: 'Train personal image models (avatars) on fal.ai and generate images with them.',
    },
    servers: [{ url: serverUrl }],
    security: [{ bearer: [] }],
    paths: {
      '/v1/avatars': {
        post: op(
          'Create an avatar',
          { 201: { description: 'The avatar', ...json('Avatar') } },
          {
            requestBody: { required: true, ...json('CreateAvatar') },
          },
        ),
      },
      '/v1/avatars/{id}': {
        get: op(
          'Get an avatar',
          { 200: { description: 'The avatar', ...json('Avatar') } },
          { parameters: [id('id')] },
        ),
      },
      '/v1/avatars/{id}/trainings': {
        post: op(
          'Train an avatar',
          { 202: { description: 'The queued training', ...json('Training') } },
          {
            parameters: [id('id'), idempotencyKey],
            requestBody: { required: false, ...json('CreateTraining') },
          },
        ),
      },
      '/v1/trainings/{id}': {
        get: op(
          'Get a training',
          { 200: { description: 'The training', ...json('Training') } },
          { parameters: [id('id')] },
        ),
      },
      '/v1/trainings/{id}/cancel': {
        post: op(
          'Cancel a training',
          { 202: { description: 'Cancellation requested', ...json('Training') } },
          {
            parameters: [id('id')],
          },
        ),
      },
      '/v1/generations': {
        post: op(
          'Generate images with a ready avatar',
          { 202: { description: 'The queued generation', ...json('Generation') } },
          {
            parameters: [idempotencyKey],
            requestBody: { required: true, ...json('CreateGeneration') },
          },
        ),
      },
      '/v1/generations/{id}': {
        get: op(
          'Get a generation',
          { 200: { description: 'The generation', ...json('Generation') } },
          {
            parameters: [id('id')],
          },
        ),
      },
      '/v1/generations/{id}/cancel': {
        post: op(
          'Cancel a generation',
          { 202: { description: 'Cancellation requested', ...json('Generation') } },
          {
            parameters: [id('id')],
          },
        ),
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        CreateAvatar: input(createAvatarBody),
        CreateTraining: input(createTrainingBody),
        CreateGeneration: input(createGenerationBody),
        Avatar: output(avatar),
        Training: output(training),
        Generation: output(generation),
        Problem: output(problemDetails),
      },
    },
  };
}
