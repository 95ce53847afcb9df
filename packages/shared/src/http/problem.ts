import { z } from 'zod';
import type { Response } from 'express';

/** RFC 9457 problem details: every HTTP error of every service has this shape. */
export const problemDetails = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  instance: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ProblemDetails = z.infer<typeof problemDetails>;

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, detail: string, extra: Partial<ProblemDetails> = {}): ProblemDetails {
  return { type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, ...extra };
}

/** A validation problem listing every bad field with its path (`overrides.steps`, `prompt`). */
export function validationProblem(error: z.ZodError, status = 400, prefix = ''): ProblemDetails {
  const errors = error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: issue.message,
  }));
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
  return problem(status, `invalid request: ${detail}`, { errors });
}

export function sendProblem(res: Response, body: ProblemDetails): void {
  res.status(body.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}
