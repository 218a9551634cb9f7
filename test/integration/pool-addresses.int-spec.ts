import { Client } from 'pg';
import { bootstrapDatabase, listFleetTargets } from '#strata/migrator';
import { tierRules } from '#strata/tenancy/platform';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

jest.setTimeout(30_000);

/** A pooler's address that is never dialled here: bootstrap and the fleet's target list only record and read it. */
const POOLER = { host: '10.255.0.7', port: 6432 };

describe('pool addresses: pooled for units of work, direct for session work', () => {
  let db: TestDatabase;
  let owner: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    owner = new Client({ connectionString: db.ownerUrl });
    await owner.connect();
  });
  afterAll(async () => {
    await owner?.end();
    await db?.drop();
  });

  const pools = async () =>
    (await owner.query(`SELECT id, host, port, direct_host, direct_port FROM control.pools ORDER BY id`)).rows as Array<Record<string, unknown>>;
  const server = () => {
    const u = new URL(db.ownerUrl);
    return { host: u.hostname, port: Number(u.port || 5432) };
  };
  const pooledUrl = () => `postgres://${POOLER.host}:${POOLER.port}/${db.name}`;

  it('points the default pools at DATABASE_POOLED_URL for units of work and at DATABASE_URL for session work, at every start, and back when it is unset', async () => {
    const { host, port } = server();
    const direct = { host: null, port: null };
    const row = (id: string, data: { host: string; port: number }, d: { host: string | null; port: number | null }) => ({
      id,
      host: data.host,
      port: data.port,
      direct_host: d.host,
      direct_port: d.port,
    });
    expect(await pools()).toEqual(['main-bridge', 'main-pool', 'main-silo'].map((id) => row(id, { host, port }, direct)));

    await bootstrapDatabase({ ownerUrl: db.ownerUrl, appRole: db.appRole, pooledUrl: pooledUrl() });
    expect(await pools()).toEqual(['main-bridge', 'main-pool', 'main-silo'].map((id) => row(id, POOLER, { host, port })));

    await bootstrapDatabase({ ownerUrl: db.ownerUrl, appRole: db.appRole });
    expect(await pools()).toEqual(['main-bridge', 'main-pool', 'main-silo'].map((id) => row(id, { host, port }, direct)));
  });

  it('leaves a default pool alone that an operator pointed at another server', async () => {
    await owner.query(`UPDATE control.pools SET direct_host = '10.255.0.8', direct_port = 5432 WHERE id = 'main-silo'`);
    try {
      await bootstrapDatabase({ ownerUrl: db.ownerUrl, appRole: db.appRole, pooledUrl: pooledUrl() });
      expect((await pools()).find((p) => p.id === 'main-silo')).toMatchObject({ direct_host: '10.255.0.8', direct_port: 5432 });
      expect((await pools()).find((p) => p.id === 'main-pool')).toMatchObject({ host: POOLER.host, port: POOLER.port });
    } finally {
      await owner.query(`UPDATE control.pools SET direct_host = NULL, direct_port = NULL WHERE id = 'main-silo'`);
      await bootstrapDatabase({ ownerUrl: db.ownerUrl, appRole: db.appRole });
    }
  });

  it('migrates every target at its direct address and derives homes with both addresses', async () => {
    const { host, port } = server();
    await owner.query(`UPDATE control.pools SET host = $1, port = $2, direct_host = $3, direct_port = $4`, [POOLER.host, POOLER.port, host, port]);
    try {
      const targets = await listFleetTargets(owner);
      expect(targets.length).toBeGreaterThan(0);
      for (const t of targets) expect(t).toMatchObject({ host, port });
      const pool = { id: 'main-silo', database: db.name, host: POOLER.host, port: POOLER.port, directHost: host, directPort: port };
      expect(tierRules('silo').homeOf({ schemaName: 'shared', databaseName: 'strata_t_x' }, pool)).toMatchObject({
        host,
        port,
        dataHost: POOLER.host,
        dataPort: POOLER.port,
        database: 'strata_t_x',
        poolDatabase: db.name,
      });
      // No direct address: both are host/port, as before there was a pooler.
      expect(tierRules('bridge').homeOf({ schemaName: 't_x', databaseName: null }, { id: 'b', database: db.name, host, port })).toMatchObject({
        host,
        port,
        dataHost: host,
        dataPort: port,
      });
    } finally {
      await owner.query(`UPDATE control.pools SET host = $1, port = $2, direct_host = NULL, direct_port = NULL`, [host, port]);
    }
  });
});
