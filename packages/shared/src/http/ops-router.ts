import { Router, type Router as ExpressRouter } from 'express';
import type { Registry } from 'prom-client';
import { problem, sendProblem } from './problem';

/** A readiness check answers true, or throws / answers a string saying what is wrong. */
export type ReadinessCheck = () => Promise<true | string>;

/** `/metrics`, `/healthz` (the process runs) and `/readyz` (its dependencies answer): mounted by every service. */
export function opsRouter(
  registry: Registry,
  checks: Record<string, ReadinessCheck> = {},
  timeoutMs = 2_000,
): ExpressRouter {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => [name, await runCheck(check, timeoutMs)] as const),
    );
    const failing = results.filter(([, r]) => r !== true);
    if (failing.length === 0) {
      res.json({ status: 'ready', checks: Object.fromEntries(results) });
      return;
    }
    sendProblem(
      res,
      problem(503, `not ready: ${failing.map(([name, why]) => `${name}: ${why}`).join('; ')}`),
    );
  });
  return router;
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
    });
    return await Promise.race([check(), timeout]);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}
