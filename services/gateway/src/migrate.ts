import pg from 'pg';
import { createLogger, databaseEnv, loadConfigOrExit, logEnv } from '@aisha/shared';
import { ensureDatabase, migrate } from './db/database';

/** `node dist/migrate.js`: create the database if missing and apply pending migrations (docker compose's migrate). */
async function main() {
  const config = loadConfigOrExit({ database: databaseEnv, log: logEnv });
  const log = createLogger('migrate', config.log.level);
  await ensureDatabase(config.database.url);
  const pool = new pg.Pool({ connectionString: config.database.url });
  try {
    const applied = await migrate(pool);
    log.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await pool.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`migration failed: ${(err as Error).message}\n`);
  process.exit(1);
});
