import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response, Router } from 'express';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { problem, sendProblem } from '@aisha/shared';

export const ADMIN_PATH = '/admin/queues';

/** Bull Board over every queue, for operators, behind ADMIN_KEY (Bearer, or Basic with any user name). */
export function adminBoard(
  queues: Queue[],
  adminKey: string,
): [(req: Request, res: Response, next: NextFunction) => void, Router] {
  const adapter = new ExpressAdapter();
  adapter.setBasePath(ADMIN_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
  return [requireAdminKey(adminKey), adapter.getRouter() as Router];
}

function requireAdminKey(adminKey: string) {
  const expected = Buffer.from(adminKey);
  return (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const given = header.startsWith('Bearer ')
      ? header.slice(7)
      : header.startsWith('Basic ')
        ? Buffer.from(header.slice(6), 'base64').toString('utf8').split(':').slice(1).join(':')
        : '';
    const candidate = Buffer.from(given);
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) return next();
    res.set('www-authenticate', 'Basic realm="aisha admin"');
    sendProblem(res, problem(401, 'admin key required (ADMIN_KEY, as Bearer or Basic password)'));
  };
}
