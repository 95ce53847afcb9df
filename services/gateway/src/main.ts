import { closeOnSignals, createLogger, loadConfigOrExit } from '@aisha/shared';
import { gatewaySections, startGateway } from './index';

async function main() {
  const config = loadConfigOrExit(gatewaySections);
  const log = createLogger('gateway', config.log.level);
  const gateway = await startGateway(config, log);
  closeOnSignals(() => gateway.close(), log);
}

void main();
