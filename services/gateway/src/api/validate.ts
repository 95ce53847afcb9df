import type { Response } from 'express';
import type { z } from 'zod';
import { sendProblem, validationProblem, type ProblemDetails } from '@aisha/shared';
import type { Answer } from './idempotency';

/** Parses a request part with its schema; on failure answers 400 problem+json listing every bad field. */
export function parseOr400<T extends z.ZodType>(
  schema: T,
  value: unknown,
  res: Response,
): z.output<T> | undefined {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  sendProblem(res, validationProblem(parsed.error));
  return undefined;
}

export function send(res: Response, answer: Answer): void {
  const body = answer.body as ProblemDetails | undefined;
  if (answer.status >= 400 && body && typeof body === 'object' && 'title' in body) {
    sendProblem(res, body);
    return;
  }
  res.status(answer.status).json(answer.body);
}
