import { spawnSync } from 'node:child_process';

/**
 * Finds Debian's `promtool` and `prometheus`, installing the `prometheus` package (which brings both) when they are
 * absent. Says what is missing only when they cannot be installed (no root, no package source).
 */
/** The last lines of what the installer said; a spawn that failed (no sudo) has no output, only an error. */
function lastLines(result: ReturnType<typeof spawnSync>): string {
  const said = String(result.stderr || result.stdout || result.error?.message || 'no output').trim();
  return said.split('\n').slice(-2).join(' ');
}

export function ensurePrometheus(): { promtool: string; prometheus: string } | { missing: string } {
  const find = () => {
    const promtool = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
    const prometheus = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim();
    return promtool && prometheus ? { promtool, prometheus } : undefined;
  };
  const found = find();
  if (found) return found;
  const asRoot = process.getuid?.() === 0;
  const install = (...args: string[]) =>
    spawnSync(asRoot ? args[0]! : 'sudo', asRoot ? args.slice(1) : ['-n', ...args], {
      encoding: 'utf8',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  let result = install('apt-get', 'install', '-y', '--no-install-recommends', 'prometheus');
  // A fresh machine may hold no package lists yet.
  if (result.status !== 0) {
    install('apt-get', 'update');
    result = install('apt-get', 'install', '-y', '--no-install-recommends', 'prometheus');
  }
  return (
    find() ?? {
      missing: `apt-get install prometheus failed (${result.status}): ${lastLines(result)}`,
    }
  );
}
