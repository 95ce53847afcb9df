import { closeOnSignals, createLogger, loadConfigOrExit, logEnv } from '@aisha/shared';
import { falSimEnv } from './options';
import { startFalSim } from './index';

async function main() {
  const config = loadConfigOrExit({ sim: falSimEnv, log: logEnv });
  const log = createLogger('fal-sim', config.log.level);
  const sim = await startFalSim(config.sim, log);
  log.info(
    { url: sim.url, jwks: sim.jwksUrl },
    'fal-sim ready: point FAL_QUEUE_URL, FAL_REST_URL and FAL_JWKS_URL here',
  );

  closeOnSignals(() => sim.stop(), log);
}

main().catch((err: unknown) => {
  // A taken port, most often: one line saying so, not a stack trace.
  process.stderr.write(`fal-sim failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
