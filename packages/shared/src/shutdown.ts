import type { Logger } from 'pino';

/**
 * SIGTERM/SIGINT (an orchestrator's stop, or Ctrl-C): run `close` once, then exit 0; exit 1 if it takes longer
 * than the grace period, so a stuck drain never outlives the orchestrator's patience silently.
 */
export function closeOnSignals(close: () => Promise<void>, log: Logger, graceMs = 10_000): void {
  let closing = false;
  const stop = async (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    setTimeout(() => {
      log.error({ graceMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, graceMs).unref();
    await close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
