// Installs what the workspace needs, so that `npm start` and `npm test` work on a fresh clone:
// pnpm itself (from npm: corepack cannot fetch it on every machine) and the locked dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const PNPM_VERSION = '10.34.8';
const root = path.resolve(import.meta.dirname, '..');
const localPnpm = path.join(root, '.tools', 'node_modules', '.bin', 'pnpm');

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  return res.status === 0;
}

function pnpmVersion(cmd) {
  const res = spawnSync(cmd, ['--version'], { cwd: root, encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : undefined;
}

function findPnpm() {
  if (pnpmVersion('pnpm')?.startsWith('10.')) return 'pnpm';
  if (existsSync(localPnpm)) return localPnpm;
  console.log(`[bootstrap] installing pnpm ${PNPM_VERSION} from npm`);
  if (run('npm', ['install', '--global', '--silent', `pnpm@${PNPM_VERSION}`]) && pnpmVersion('pnpm'))
    return 'pnpm';
  // No rights to install globally: keep a private copy in .tools/.
  if (
    run('npm', [
      'install',
      '--silent',
      '--no-save',
      '--prefix',
      path.join(root, '.tools'),
      `pnpm@${PNPM_VERSION}`,
    ])
  ) {
    return localPnpm;
  }
  console.error('[bootstrap] could not install pnpm; install pnpm 10 and retry');
  process.exit(1);
}

const pnpm = findPnpm();
if (!run(pnpm, ['install', '--frozen-lockfile', '--prefer-offline', '--reporter=silent'])) {
  console.error('[bootstrap] pnpm install failed');
  process.exit(1);
}
