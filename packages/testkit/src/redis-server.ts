import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './wait-for';

/**
 * A Redis of the test's own on a spare port (AOF on, as production runs it), which the test may stop and start
 * again: the machine's shared Redis on 6379 must never be stopped by a test.
 */
export async function startDedicatedRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aisha-redis-'));
  const start = async () => {
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', ''],
      { stdio: 'ignore' },
    );
    child.unref();
    await waitFor(() => ping(port), 10_000, `redis on ${port}`);
  };
  const stop = async () => {
    spawnSync('redis-cli', ['-p', String(port), 'shutdown'], { stdio: 'ignore' });
    await waitFor(async () => !(await ping(port)), 10_000, `redis on ${port} to stop`);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    stop,
    async destroy() {
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
    });
    socket.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}
