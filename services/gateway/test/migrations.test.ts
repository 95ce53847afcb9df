import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { ensureDatabase, migrate, seedApiKeys } from '@aisha/gateway';

// The database a fresh machine starts with: created if missing, migrated once even by replicas starting together.
const database = `aisha_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const url = `postgres://postgres@127.0.0.1:5432/${database}`;
const pools: pg.Pool[] = [];

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await admin.end();
});

it('creates the database and applies each migration once, with three replicas starting at once', async () => {
  await Promise.all([ensureDatabase(url), ensureDatabase(url), ensureDatabase(url)]);
  pools.push(...[1, 2, 3].map(() => new pg.Pool({ connectionString: url })));
  const applied = await Promise.all(pools.map((pool) => migrate(pool)));
  expect(applied.flat()).toEqual([
    '001_initial.sql',
    '002_generation_training_type.sql',
    '003_enqueue_failed.sql',
  ]);
  const { rows } = await pools[0]!.query('SELECT version FROM schema_migrations');
  expect(rows).toEqual([
    { version: '001_initial.sql' },
    { version: '002_generation_training_type.sql' },
    { version: '003_enqueue_failed.sql' },
  ]);
  expect(await migrate(pools[0]!)).toEqual([]);
});

it('keeps API keys hashed and revokes a key no longer listed in API_KEYS', async () => {
  const pool = pools[0]!;
  await seedApiKeys(pool, [
    { tenant: 'acme', key: 'old-key-0001' },
    { tenant: 'acme', key: 'new-key-0001' },
  ]);
  await seedApiKeys(pool, [{ tenant: 'acme', key: 'new-key-0001' }]);
  const { rows } = await pool.query(
    "SELECT encode(key_hash, 'hex') AS hash, revoked_at IS NOT NULL AS revoked FROM api_keys ORDER BY id",
  );
  expect(rows.map((r) => r.revoked)).toEqual([true, false]);
  expect(rows.every((r) => r.hash.length === 64 && !r.hash.includes('key'))).toBe(true);
  // Listing it again brings it back.
  await seedApiKeys(pool, [{ tenant: 'acme', key: 'old-key-0001' }]);
  const again = await pool.query('SELECT revoked_at IS NOT NULL AS revoked FROM api_keys ORDER BY id');
  expect(again.rows.map((r) => r.revoked)).toEqual([false, true]);
});

it('moves a key listed under another tenant to that tenant', async () => {
  const pool = pools[0]!;
  await seedApiKeys(pool, [{ tenant: 'acme', key: 'moving-key-01' }]);
  await seedApiKeys(pool, [{ tenant: 'globex', key: 'moving-key-01' }]);
  const { rows } = await pool.query(
    'SELECT tenant_id, revoked_at IS NOT NULL AS revoked FROM api_keys WHERE key_hash = $1',
    [createHash('sha256').update('moving-key-01').digest()],
  );
  expect(rows).toEqual([{ tenant_id: 'globex', revoked: false }]);
});
