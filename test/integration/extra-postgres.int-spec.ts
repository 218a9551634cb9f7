import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Client } from 'pg';
import { startExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';

jest.setTimeout(60_000);

/** True when something accepts TCP connections on 127.0.0.1:port. */
const listening = (port: number) =>
  new Promise<boolean>((res) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });

async function ownerQuery<R>(url: string, sql: string): Promise<R[]> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(sql)).rows as R[];
  } finally {
    await c.end();
  }
}

describe('extra PostgreSQL server for tests', () => {
  let pg: ExtraPostgres | undefined;

  afterAll(async () => {
    await pg?.stop();
  });

  it('an extra server starts on a free port, accepts the owner without a password and is gone after stop', async () => {
    const t0 = Date.now();
    pg = await startExtraPostgres();
    const started = Date.now() - t0;

    expect(pg.host).toBe('127.0.0.1');
    expect(pg.port).not.toBe(5432);
    expect(pg.url('strata')).toBe(`postgres://postgres@127.0.0.1:${pg.port}/strata`);

    // No password in the URL: trust from 127.0.0.1, like the shared server.
    const [me] = await ownerQuery<{ user: string; superuser: boolean; max: string; listen: string }>(
      pg.url(),
      `SELECT current_user AS user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
              current_setting('max_connections') AS max, current_setting('listen_addresses') AS listen`,
    );
    expect(me).toEqual({ user: 'postgres', superuser: true, max: expect.any(String), listen: '127.0.0.1' });
    expect(Number(me.max)).toBeGreaterThanOrEqual(100);

    // A brand-new cluster: nothing of the shared server's (no test roles, only the stock databases).
    const dbs = await ownerQuery<{ datname: string }>(pg.url(), `SELECT datname FROM pg_database ORDER BY datname`);
    expect(dbs.map((d) => d.datname)).toEqual(['postgres', 'template0', 'template1']);

    // restart keeps the data and the port.
    await ownerQuery(pg.url(), `CREATE DATABASE kept`);
    await pg.restart();
    expect((await ownerQuery<{ n: number }>(pg.url('kept'), `SELECT 1 AS n`))[0].n).toBe(1);

    const { port, dataDir } = pg;
    const t1 = Date.now();
    await pg.stop();
    const stopped = Date.now() - t1;
    if (process.env.EXTRA_PG_TIMINGS) console.log(`extra PostgreSQL: start ${started} ms, stop ${stopped} ms`);

    expect(await listening(port)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
    await expect(ownerQuery(pg.url(), 'SELECT 1')).rejects.toThrow();
    await pg.stop(); // idempotent
    pg = undefined;

    // The shared server is untouched.
    expect((await ownerQuery<{ n: number }>('postgres://postgres@127.0.0.1:5432/postgres', 'SELECT 1 AS n'))[0].n).toBe(1);
  });
});
