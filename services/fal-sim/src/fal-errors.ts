import type { NextFunction, Request, Response } from 'express';
import type { z } from 'zod';

/** fal answers errors as `{detail}`: a message, or pydantic's list of `{loc, msg, type}` for a 422. */
export function sendFalError(res: Response, status: number, detail: unknown): void {
  res.status(status).json({ detail });
}

/** A zod failure in the shape FastAPI/pydantic (and so fal) gives a 422: the real client makes it a ValidationError. */
export function pydanticDetail(
  error: z.ZodError,
): Array<{ loc: (string | number)[]; msg: string; type: string }> {
  return error.issues.flatMap((issue) => {
    const loc = ['body', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        loc: [...loc, key],
        msg: 'Extra inputs are not permitted',
        type: 'extra_forbidden',
      }));
    }
    if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) {
      return [{ loc, msg: 'Field required', type: 'missing' }];
    }
    return [{ loc, msg: issue.message, type: 'value_error' }];
  });
}

/** Errors thrown before a route answers (malformed JSON, a body over the limit) get fal's `{detail}` shape too. */
export function falErrorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  // FastAPI (and so fal) answers a body that is not JSON with a 422, not a 400.
  if ((err as { type?: unknown }).type === 'entity.parse.failed') {
    return sendFalError(res, 422, [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }]);
  }
  const status = (err as { status?: unknown }).status;
  const code = typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
  const message = err instanceof Error ? err.message : String(err);
  sendFalError(res, code, code === 500 ? `fal-sim failed: ${message}` : message);
}
