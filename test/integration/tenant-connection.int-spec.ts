import { ClsService } from 'nestjs-cls';
import type { TenantEntity } from '#strata/control-plane';
import {
  enterReadSql,
  enterReadStatement,
  MissingTenantContextError,
  preparedStatementRecoveries,
  SharedDataSources,
  SiloDataSourceCache,
  TenantPlacementError,
  type TenantPlacement, placementOf } from '#strata/tenancy/platform';
import { uniqueSlug } from '../support/test-database';
import { createTenancyFixture, rejectionOf, sleep, sqlState, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;

describe('tenant connection manager', () => {
  let fx: TenancyFixture;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier);
  });
  afterAll(async () => {
    await fx?.close();
  });

  const unitBudgets = () => ({ statementTimeoutMs: fx.config.dataStatementTimeoutMs, lockTimeoutMs: fx.config.dataLockTimeoutMs });
  /** The name the fixture's read setup is prepared under (a hash of its text, budgets included). */
  const readSetupName = () => enterReadStatement(true, unitBudgets());

  const countByName = async (t: TestTenant, name: string): Promise<number> => {
    const rows = await fx.ownerQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${t.table('projects')} WHERE tenant_id = $1 AND name = $2`,
      [t.id, name],
      t.database,
    );
    return rows[0].n;
  };

  describe('without a tenant context', () => {
    it('refuses a unit of work with an actionable MissingTenantContextError before running it', async () => {
      let ran = false;
      const err = await rejectionOf(
        fx.conn.transaction(async () => {
          ran = true;
        }),
      );
      expect(err).toBeInstanceOf(MissingTenantContextError);
      expect(err.message).toMatch(/^no tenant context: a tenant database transaction needs a tenant\./);
      expect(err.message).toMatch(/wrap the call in tenantContext\.run\(scope, fn\)/);
      expect(err.message).toMatch(/runAsSystem\(fn\)/);
      expect(ran).toBe(false);
    });

    it('refuses a unit of work inside an active CLS context that holds no tenant', async () => {
      const cls = fx.module.get(ClsService);
      let ran = false;
      const err = await rejectionOf(
        cls.run(() =>
          fx.conn.transaction(async () => {
            ran = true;
          }),
        ),
      );
      expect(err).toBeInstanceOf(MissingTenantContextError);
      expect(ran).toBe(false);
    });

    it('throws MissingTenantContextError from TenantConnectionManager.manager', () => {
      expect(() => fx.conn.manager).toThrow(MissingTenantContextError);
      expect(() => fx.conn.manager).toThrow(/no tenant context: a tenant repository needs a tenant/);
    });
  });

  describe('inside a tenant context', () => {
    it('throws from TenantConnectionManager.manager outside a transaction', () => {
      fx.ctx.run({ tenant: tenants.pool.placement }, () => {
        expect(() => fx.conn.manager).toThrow(/no open tenant transaction: call repositories inside tenantConnectionManager\.transaction/);
        expect(() => fx.conn.manager).not.toThrow(MissingTenantContextError);
      });
    });

    it('exposes the open unit through TenantConnectionManager.manager only while it runs', async () => {
      await fx.ctx.run({ tenant: tenants.pool.placement }, async () => {
        const inside = await fx.conn.transaction(async (em) => fx.conn.manager === em);
        expect(inside).toBe(true);
        expect(() => fx.conn.manager).toThrow(/no open tenant transaction/);
      });
    });

    it.each(TIERS)('runs a %s unit of work as the app role in the tenant schema and database with the tenant set', async (tier) => {
      const t = tenants[tier];
      const rows = await fx.inTenant(t, async (em) => {
        await em.query(`INSERT INTO projects (name) VALUES ('placed')`);
        return em.query(
          `SELECT tenant_id, current_schema() AS schema, current_database() AS database,
                  current_setting('app.tenant_id') AS tenant, current_user AS usr
             FROM projects WHERE name = 'placed'`,
        );
      });
      expect(rows).toEqual([
        { tenant_id: t.id, schema: t.placement.schemaName, database: t.placement.databaseName ?? fx.db.name, tenant: t.id, usr: fx.db.appRole },
      ]);
      expect(rows[0].schema).toBe(tier === 'bridge' ? `t_${t.slug.replace(/-/g, '_')}` : 'shared');
      if (tier === 'silo') expect(rows[0].database).toBe(`strata_t_${t.slug.replace(/-/g, '_')}`);
      // Committed where the placement says, as the owner sees it.
      expect(await countByName(t, 'placed')).toBe(1);
    });
  });

  describe('rollback and nesting', () => {
    it.each(TIERS)('rolls back everything a failed %s unit of work wrote', async (tier) => {
      const t = tenants[tier];
      await fx.inTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('kept')`));
      const err = await rejectionOf(
        fx.inTenant(t, async (em) => {
          await em.query(`INSERT INTO projects (name) VALUES ('doomed')`);
          await em.query(`INSERT INTO invoices (number, amount, currency) VALUES ('doomed-1', 10, 'EUR')`);
          const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM projects WHERE name = 'doomed'`);
          expect(n).toBe(1); // visible inside the unit...
          throw new Error('boom');
        }),
      );
      expect(err.message).toBe('boom');
      expect(await countByName(t, 'kept')).toBe(1);
      expect(await countByName(t, 'doomed')).toBe(0); // ...gone after it failed
      const inv = await fx.ownerQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${t.table('invoices')} WHERE number = 'doomed-1'`,
        [],
        t.database,
      );
      expect(inv[0].n).toBe(0);
    });

    it.each(TIERS)('rolls back earlier writes when a later %s statement fails, and the next unit works', async (tier) => {
      const t = tenants[tier];
      const err = await rejectionOf(
        fx.inTenant(t, async (em) => {
          await em.query(`INSERT INTO projects (name) VALUES ('before-error')`);
          await em.query(`INSERT INTO projects (name) VALUES ('')`); // violates the length CHECK
        }),
      );
      expect(sqlState(err)).toBe('23514');
      expect(await countByName(t, 'before-error')).toBe(0);
      const [{ tenant }] = await fx.inTenant(t, (em) => em.query(`SELECT current_setting('app.tenant_id') AS tenant`));
      expect(tenant).toBe(t.id);
    });

    it.each(TIERS)('joins a nested %s transaction() to the open unit on the same backend', async (tier) => {
      const t = tenants[tier];
      const err = await rejectionOf(
        fx.inTenant(t, async (outer) => {
          const [{ pid: outerPid }] = await outer.query(`SELECT pg_backend_pid() AS pid`);
          const inner = await fx.conn.transaction(async (em) => {
            await em.query(`INSERT INTO projects (name) VALUES ('nested-write')`);
            const [{ pid }] = await em.query(`SELECT pg_backend_pid() AS pid`);
            const deeper = await fx.conn.transaction(async (em3) => (await em3.query(`SELECT pg_backend_pid() AS pid`))[0].pid);
            return { pid, deeper, same: em === outer };
          });
          expect(inner).toEqual({ pid: outerPid, deeper: outerPid, same: true });
          throw new Error('outer fails after the nested unit returned');
        }),
      );
      expect(err.message).toBe('outer fails after the nested unit returned');
      // The nested write was part of the outer transaction, so it rolled back with it.
      expect(await countByName(t, 'nested-write')).toBe(0);
    });

    it.each(TIERS)('runs %s after-commit callbacks once the data is committed, in the tenant context, and never after a rollback', async (tier) => {
      const t = tenants[tier];
      const seen: Array<{ tenant: string; committed: number }> = [];
      const register = (name: string) =>
        fx.conn.afterCommit(async () => {
          // A fresh unit of work sees the committed row: the callback runs after COMMIT, outside the unit.
          seen.push({ tenant: fx.ctx.tenant.id, committed: await countByName(t, name) });
        });
      await fx.inTenant(t, async (em) => {
        await em.query(`INSERT INTO projects (name) VALUES ('after-commit-kept')`);
        await fx.conn.transaction(async () => register('after-commit-kept')); // from a nested unit too
        expect(seen).toEqual([]);
      });
      expect(seen).toEqual([{ tenant: t.id, committed: 1 }]);

      const err = await rejectionOf(
        fx.inTenant(t, async (em) => {
          await em.query(`INSERT INTO projects (name) VALUES ('after-commit-doomed')`);
          register('after-commit-doomed');
          throw new Error('rolled back');
        }),
      );
      expect(err.message).toBe('rolled back');
      expect(seen).toHaveLength(1);
    });

    it.each(TIERS)('runs %s before-commit hooks after all of the work, in order, on its connection; one that throws rolls the unit back', async (tier) => {
      const t = tenants[tier];
      const order: string[] = [];
      await fx.inTenant(t, async (em) => {
        fx.conn.beforeCommit(async (hookEm) => {
          // The unit's own transaction: the work's uncommitted row is visible here.
          order.push(`first sees ${(await hookEm.query(`SELECT count(*)::int AS n FROM projects WHERE name = 'before-commit-kept'`))[0].n}`);
        });
        await fx.conn.transaction(async () => fx.conn.beforeCommit(async () => void order.push('second'))); // from a nested unit too
        await em.query(`INSERT INTO projects (name) VALUES ('before-commit-kept')`);
        order.push('work done');
      });
      expect(order).toEqual(['work done', 'first sees 1', 'second']);
      expect(await countByName(t, 'before-commit-kept')).toBe(1);

      const err = await rejectionOf(
        fx.inTenant(t, async (em) => {
          await em.query(`INSERT INTO projects (name) VALUES ('before-commit-doomed')`);
          fx.conn.beforeCommit(async (hookEm) => {
            await hookEm.query(`INSERT INTO projects (name) VALUES ('before-commit-doomed-too')`);
            throw new Error('refused at commit');
          });
        }),
      );
      expect(err.message).toBe('refused at commit');
      expect(await countByName(t, 'before-commit-doomed')).toBe(0);
      expect(await countByName(t, 'before-commit-doomed-too')).toBe(0);
    });

    it.each(TIERS)('sends %s commit statements in order with the COMMIT; one that raises rolls the whole unit back and its failure is the unit\'s error', async (tier) => {
      const t = tenants[tier];
      await fx.inTenant(t, async (em) => {
        await em.query(`INSERT INTO projects (name) VALUES ('commit-with-kept')`);
        fx.conn.commitWith(() => [{ sql: `INSERT INTO projects (name) VALUES ($1)`, params: ['commit-with-kept-too'] }]);
      });
      expect(await countByName(t, 'commit-with-kept')).toBe(1);
      expect(await countByName(t, 'commit-with-kept-too')).toBe(1);

      class Refused extends Error {}
      const err = await rejectionOf(
        fx.inTenant(t, async (em) => {
          await em.query(`INSERT INTO projects (name) VALUES ('commit-with-doomed')`);
          fx.conn.commitWith(() => [
            { sql: `INSERT INTO projects (name) VALUES ($1)`, params: ['commit-with-doomed-too'] },
            { sql: `SELECT 1 / 0`, failure: (e) => ((e as { code?: string }).code === '22012' ? new Refused('refused at commit') : undefined) },
          ]);
        }),
      );
      expect(err).toBeInstanceOf(Refused);
      expect(await countByName(t, 'commit-with-doomed')).toBe(0);
      expect(await countByName(t, 'commit-with-doomed-too')).toBe(0);
      // The connection went back clean: the next unit on it commits.
      await fx.inTenant(t, async (em) => void (await em.query(`INSERT INTO projects (name) VALUES ('commit-with-after')`)));
      expect(await countByName(t, 'commit-with-after')).toBe(1);
    });

    it('refuses a before-commit hook outside a unit of work and inside a read unit', async () => {
      fx.ctx.run({ tenant: tenants.pool.placement }, () => {
        expect(() => fx.conn.beforeCommit(async () => undefined)).toThrow(/no open tenant transaction: call beforeCommit\(\) inside/);
        expect(() => fx.conn.commitWith(() => [])).toThrow(/no open tenant transaction: call commitWith\(\) inside/);
      });
      expect(() => fx.conn.beforeCommit(async () => undefined)).toThrow(MissingTenantContextError);
      const err = await rejectionOf(fx.readInTenant(tenants.pool, async () => fx.conn.beforeCommit(async () => undefined)));
      expect(err.message).toMatch(/beforeCommit\(\) inside tenantConnectionManager\.read\(\)/);
    });

    it('refuses an after-commit callback outside a unit of work', () => {
      fx.ctx.run({ tenant: tenants.pool.placement }, () => {
        expect(() => fx.conn.afterCommit(() => undefined)).toThrow(/no open tenant transaction: call afterCommit\(\) inside/);
      });
      expect(() => fx.conn.afterCommit(() => undefined)).toThrow(MissingTenantContextError);
    });
  });

  describe('read units', () => {
    it.each(TIERS)('reads %s tenant data as the app role in the tenant schema and database, with the tenant set, read-only', async (tier) => {
      const t = tenants[tier];
      await fx.inTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('read-me')`));
      const rows = await fx.readInTenant(t, (em) =>
        em.query(
          `SELECT tenant_id, current_schema() AS schema, current_database() AS database, current_user AS usr,
                  current_setting('app.tenant_id') AS tenant, current_setting('transaction_read_only') AS read_only
             FROM projects WHERE name = $1`,
          ['read-me'],
        ),
      );
      expect(rows).toEqual([
        {
          tenant_id: t.id,
          schema: t.placement.schemaName,
          database: t.placement.databaseName ?? fx.db.name,
          usr: fx.db.appRole,
          tenant: t.id,
          read_only: 'on',
        },
      ]);
    });

    it.each(TIERS)('sets the %s tenant for every statement of a read unit, including statements without parameters', async (tier) => {
      const t = tenants[tier];
      const seen = await fx.readInTenant(t, async (em) => {
        const first = await em.query(`SELECT current_setting('app.tenant_id') AS tenant`);
        const second = await em.query(`SELECT current_setting('app.tenant_id') AS tenant, $1::int AS n`, [2]);
        return [first[0].tenant, second[0].tenant];
      });
      expect(seen).toEqual([t.id, t.id]);
    });

    it.each(TIERS)('runs each statement of a %s read unit in its own transaction (READ COMMITTED reads, no BEGIN)', async (tier) => {
      const t = tenants[tier];
      const [a, b] = await fx.readInTenant(t, async (em) => {
        const [x] = await em.query(`SELECT now()::text AS at, pg_backend_pid() AS pid`);
        await sleep(20);
        const [y] = await em.query(`SELECT now()::text AS at, pg_backend_pid() AS pid`);
        return [x, y];
      });
      expect(b.pid).toBe(a.pid); // one connection for the unit...
      expect(b.at).not.toBe(a.at); // ...but a transaction per statement
    });

    it.each(TIERS)('refuses a write inside a %s read unit and writes nothing', async (tier) => {
      const t = tenants[tier];
      const err = await rejectionOf(fx.readInTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('sneaked-in')`)));
      expect(sqlState(err)).toBe('25006'); // read_only_sql_transaction
      expect(await countByName(t, 'sneaked-in')).toBe(0);
    });

    it.each(TIERS)('fails a %s read statement that errors and keeps the unit usable, tenant still set', async (tier) => {
      const t = tenants[tier];
      const after = await fx.readInTenant(t, async (em) => {
        expect(sqlState(await rejectionOf(em.query(`SELECT 1/0`)))).toBe('22012');
        return (await em.query(`SELECT current_setting('app.tenant_id') AS tenant`))[0].tenant;
      });
      expect(after).toBe(t.id);
    });

    it.each(TIERS)('sends concurrent statements of one %s read unit down one connection, each with its own setup', async (tier) => {
      const t = tenants[tier];
      const rows = await fx.readInTenant(t, (em) =>
        Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            em.query(`SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id') AS tenant, $1::int AS i`, [i]),
          ),
        ),
      );
      expect(rows.map(([r]) => r.tenant)).toEqual(Array(5).fill(t.id));
      expect(rows.map(([r]) => r.i)).toEqual([0, 1, 2, 3, 4]);
      expect(new Set(rows.map(([r]) => r.pid)).size).toBe(1);
    });

    it('shows a pool read unit only its own tenant rows, even to an unfiltered query', async () => {
      const other = await fx.onboard('pool');
      await fx.inTenant(other, (em) => em.query(`INSERT INTO projects (name) VALUES ('not-yours')`));
      await fx.inTenant(tenants.pool, (em) => em.query(`INSERT INTO projects (name) VALUES ('yours')`));
      const [{ own }] = await fx.ownerQuery<{ own: number }>(`SELECT count(*)::int AS own FROM shared.projects WHERE tenant_id = $1`, [tenants.pool.id]);
      const [{ all }] = await fx.ownerQuery<{ all: number }>(`SELECT count(*)::int AS all FROM shared.projects`);
      expect(all).toBeGreaterThan(own);
      const seen = await fx.readInTenant(tenants.pool, (em) => em.query(`SELECT count(*)::int AS n, count(DISTINCT tenant_id)::int AS tenants FROM projects`));
      expect(seen).toEqual([{ n: own, tenants: 1 }]);
    });

    it.each(TIERS)('joins an open %s transaction: a nested read sees its uncommitted writes on the same backend', async (tier) => {
      const t = tenants[tier];
      await rejectionOf(
        fx.inTenant(t, async (outer) => {
          await outer.query(`INSERT INTO projects (name) VALUES ('uncommitted')`);
          const [{ pid: outerPid }] = await outer.query(`SELECT pg_backend_pid() AS pid`);
          const seen = await fx.conn.read(async (em) => (await em.query(`SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM projects WHERE name = 'uncommitted'`))[0]);
          expect(seen).toEqual({ pid: outerPid, n: 1 });
          throw new Error('roll it back');
        }),
      );
      expect(await countByName(t, 'uncommitted')).toBe(0);
    });

    it('refuses a transaction() or an afterCommit() inside a read unit', async () => {
      let wrote = false;
      const err = await rejectionOf(
        fx.readInTenant(tenants.pool, () =>
          fx.conn.transaction(async () => {
            wrote = true;
          }),
        ),
      );
      expect(err.message).toMatch(/cannot open a tenant transaction inside tenantConnectionManager\.read\(\)/);
      expect(wrote).toBe(false);
      const err2 = await rejectionOf(fx.readInTenant(tenants.pool, async () => fx.conn.afterCommit(() => undefined)));
      expect(err2.message).toMatch(/afterCommit\(\) inside tenantConnectionManager\.read\(\)/);
    });

    it.each(TIERS)('prepares the %s read setup once per connection and sends only Bind/Execute after that', async (tier) => {
      const t = tenants[tier];
      const seen = await fx.readInTenant(t, async (em) => {
        const out = [];
        for (let i = 0; i < 3; i++) {
          const [row] = await em.query(
            `SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id') AS tenant,
                    (SELECT count(*)::int FROM pg_prepared_statements WHERE name = $1) AS prepared,
                    (SELECT statement FROM pg_prepared_statements WHERE name = $1) AS text`,
            [readSetupName()],
          );
          out.push(row);
        }
        return out;
      });
      expect(seen.map((r) => r.tenant)).toEqual([t.id, t.id, t.id]);
      expect(seen.map((r) => r.prepared)).toEqual([1, 1, 1]);
      expect(seen[0].text).toBe(enterReadSql(true, unitBudgets()));
    });

    it.each(TIERS)('recovers a %s read statement whose server lost the prepared setup: prepares it again and runs the statement once, in the tenant', async (tier) => {
      const t = tenants[tier];
      await fx.readInTenant(t, async (em) => {
        await em.query(`DEALLOCATE ${readSetupName()}`);
        const recovered = preparedStatementRecoveries.reads;
        const [row] = await em.query(
          `SELECT current_setting('app.tenant_id') AS tenant, current_setting('transaction_read_only') AS ro,
                  (SELECT count(*)::int FROM pg_prepared_statements WHERE name = $1) AS prepared`,
          [readSetupName()],
        );
        expect(row).toEqual({ tenant: t.id, ro: 'on', prepared: 1 });
        expect(preparedStatementRecoveries.reads).toBe(recovered + 1);
      });
    });

    it('refuses a read unit without a tenant context, before running it', async () => {
      let ran = false;
      const err = await rejectionOf(
        fx.conn.read(async () => {
          ran = true;
        }),
      );
      expect(err).toBeInstanceOf(MissingTenantContextError);
      expect(err.message).toMatch(/^no tenant context: a tenant database read needs a tenant\./);
      expect(ran).toBe(false);
    });
  });

  describe('placement errors', () => {
    /** Writes a tenant record by hand (owner connection) and returns its placement as the guard would. */
    async function misplacedTenant(row: { tier: string; poolId: string; schemaName: string; databaseName: string | null }): Promise<TenantPlacement> {
      const slug = uniqueSlug('misplaced');
      const [{ id }] = await fx.ownerQuery<{ id: string }>(
        `INSERT INTO control.tenants (slug, name, tier, pool_id, status, schema_name, database_name)
         VALUES ($1, 'misplaced', $2, $3, 'active', $4, $5) RETURNING id`,
        [slug, row.tier, row.poolId, row.schemaName, row.databaseName],
      );
      const rec = (await fx.registry.findById(id)) as TenantEntity;
      expect(rec).toMatchObject({ tier: row.tier, poolId: row.poolId });
      return placementOf(rec);
    }

    const poolRowCount = async () =>
      (await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.projects WHERE tenant_id = $1`, [tenants.pool.id]))[0].n;

    it('rejects a bridge tenant whose record points at the pool-kind pool, without running the unit', async () => {
      await fx.inTenant(tenants.pool, (em) => em.query(`INSERT INTO projects (name) VALUES ('victim')`));
      const before = await poolRowCount();
      expect(before).toBeGreaterThan(0);
      const placement = await misplacedTenant({ tier: 'bridge', poolId: 'main-pool', schemaName: 'shared', databaseName: null });
      let ran = false;
      const err = await rejectionOf(
        fx.inTenant(placement, async (em) => {
          ran = true;
          await em.query(`UPDATE shared.projects SET name = 'hijacked'`);
        }),
      );
      expect(err).toBeInstanceOf(TenantPlacementError);
      expect(err.message).toMatch(/is bridge but pool main-pool serves pool/);
      expect(ran).toBe(false);
      expect(await poolRowCount()).toBe(before);
      expect(await countByName(tenants.pool, 'hijacked')).toBe(0);
    });

    it("rejects a pool tenant whose record points at the bridge-kind pool and another tenant's schema", async () => {
      const placement = await misplacedTenant({ tier: 'pool', poolId: 'main-bridge', schemaName: tenants.bridge.schema, databaseName: null });
      let ran = false;
      const err = await rejectionOf(
        fx.inTenant(placement, async () => {
          ran = true;
        }),
      );
      expect(err).toBeInstanceOf(TenantPlacementError);
      expect(ran).toBe(false);
    });

    it("rejects a silo tenant pointed at the pool-kind pool and another silo tenant's database", async () => {
      const silos = fx.module.get(SiloDataSourceCache);
      const sizeBefore = silos.stats().size;
      const placement = await misplacedTenant({
        tier: 'silo',
        poolId: 'main-pool',
        schemaName: 'shared',
        databaseName: tenants.silo.placement.databaseName,
      });
      let ran = false;
      const err = await rejectionOf(
        fx.inTenant(placement, async () => {
          ran = true;
        }),
      );
      expect(err).toBeInstanceOf(TenantPlacementError);
      expect(ran).toBe(false);
      expect(silos.stats().size).toBe(sizeBefore);
    });

    it('rejects a tenant whose pool is not registered', async () => {
      const placement: TenantPlacement = { ...tenants.pool.placement, poolId: 'ghost-pool' };
      const err = await rejectionOf(fx.inTenant(placement, async () => undefined));
      expect(err).toBeInstanceOf(TenantPlacementError);
      expect(err.message).toMatch(/pool ghost-pool of tenant .* is not registered/);
    });

    it('rejects a silo tenant without a database', async () => {
      const placement: TenantPlacement = { ...tenants.silo.placement, databaseName: null };
      const err = await rejectionOf(fx.inTenant(placement, async () => undefined));
      expect(err).toBeInstanceOf(TenantPlacementError);
      expect(err.message).toMatch(/has no database/);
    });
  });
});

describe('tenant setting on a reused shared connection (DATA_POOL_MAX=1)', () => {
  let fx: TenancyFixture;
  let pool: TestTenant;
  let bridge: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture({ dataPoolMax: 1 });
    pool = await fx.onboard('pool');
    bridge = await fx.onboard('bridge');
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** The one connection of the shared DataSource, queried outside any tenant unit. */
  async function probeShared(t: TestTenant) {
    const poolEntity = await fx.registry.findPool(t.placement.poolId);
    const ds = await fx.module.get(SharedDataSources).get(poolEntity!);
    const [row] = await ds.query(
      `SELECT pg_backend_pid() AS pid,
              current_setting('app.tenant_id', true) AS tenant,
              current_setting('search_path') AS search_path,
              (SELECT reset_val FROM pg_settings WHERE name = 'search_path') AS default_search_path,
              (SELECT count(*)::int FROM shared.projects) AS visible_pool_rows,
              now() = statement_timestamp() AS in_no_transaction`,
    );
    return row as { pid: number; tenant: string | null; search_path: string; default_search_path: string; visible_pool_rows: number; in_no_transaction: boolean };
  }

  async function expectClean(t: TestTenant, pid: number) {
    const after = await probeShared(t);
    expect(after.pid).toBe(pid); // the very connection the unit used
    expect(after.tenant === '' || after.tenant === null).toBe(true);
    expect(after.search_path).toBe(after.default_search_path);
    expect(after.search_path).not.toMatch(/shared|t_/);
    expect(after.visible_pool_rows).toBe(0);
    expect(after.in_no_transaction).toBe(true);
  }

  it('leaves neither app.tenant_id nor search_path behind after a pool unit of work', async () => {
    const inside = await fx.inTenant(pool, async (em) => {
      await em.query(`INSERT INTO projects (name) VALUES ('a-row')`);
      const [r] = await em.query(`SELECT pg_backend_pid() AS pid, current_setting('app.tenant_id') AS tenant, current_schema() AS schema`);
      return r;
    });
    expect(inside).toMatchObject({ tenant: pool.id, schema: 'shared' });
    const [{ n }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.projects WHERE tenant_id = $1`, [pool.id]);
    expect(n).toBeGreaterThan(0);
    await expectClean(pool, inside.pid);
  });

  it('leaves neither app.tenant_id nor search_path behind after a bridge unit of work', async () => {
    const inside = await fx.inTenant(bridge, async (em) => {
      await em.query(`INSERT INTO projects (name) VALUES ('b-row')`);
      return (await em.query(`SELECT pg_backend_pid() AS pid, current_schema() AS schema`))[0];
    });
    expect(inside.schema).toBe(bridge.schema);
    await expectClean(bridge, inside.pid);
  });

  it('leaves nothing behind after a unit of work that threw', async () => {
    let pid = 0;
    await rejectionOf(
      fx.inTenant(bridge, async (em) => {
        pid = (await em.query(`SELECT pg_backend_pid() AS pid`))[0].pid;
        throw new Error('work failed');
      }),
    );
    expect(pid).toBeGreaterThan(0);
    await expectClean(bridge, pid);
  });

  it('leaves nothing behind after a unit of work whose statement failed', async () => {
    let pid = 0;
    const err = await rejectionOf(
      fx.inTenant(pool, async (em) => {
        pid = (await em.query(`SELECT pg_backend_pid() AS pid`))[0].pid;
        await em.query(`SELECT 1/0`);
      }),
    );
    expect(sqlState(err)).toBe('22012');
    await expectClean(pool, pid);
  });

  it('leaves neither app.tenant_id, search_path nor read-only behind after a read unit, also one whose statement failed', async () => {
    const inside = await fx.readInTenant(bridge, async (em) => (await em.query(`SELECT pg_backend_pid() AS pid, current_schema() AS schema`))[0]);
    expect(inside.schema).toBe(bridge.schema);
    await expectClean(bridge, inside.pid);
    let pid = 0;
    const err = await rejectionOf(
      fx.readInTenant(pool, async (em) => {
        pid = (await em.query(`SELECT pg_backend_pid() AS pid`))[0].pid;
        await em.query(`SELECT 1/0`);
      }),
    );
    expect(sqlState(err)).toBe('22012');
    await expectClean(pool, pid);
    const poolEntity = await fx.registry.findPool(pool.placement.poolId);
    const ds = await fx.module.get(SharedDataSources).get(poolEntity!);
    const [{ read_only }] = await ds.query(`SELECT current_setting('transaction_read_only') AS read_only`);
    expect(read_only).toBe('off');
  });

  it('leaves nothing behind after a read statement whose parameters pg cannot serialise', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const err = await rejectionOf(fx.readInTenant(pool, (em) => em.query(`SELECT $1::jsonb AS v`, [circular])));
    expect(err.message).toMatch(/circular/i);
    const after = await probeShared(pool);
    expect(after.tenant === '' || after.tenant === null).toBe(true);
    expect(after.search_path).toBe(after.default_search_path);
    expect(after.visible_pool_rows).toBe(0);
    expect(after.in_no_transaction).toBe(true);
  });

  it('gives the next tenant on the same connection only its own rows, after a read unit', async () => {
    const a = await fx.readInTenant(pool, async (em) => (await em.query(`SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM projects`))[0]);
    const b = await fx.readInTenant(bridge, async (em) =>
      (await em.query(`SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM shared.projects) AS pool_rows, current_setting('app.tenant_id') AS tenant`))[0],
    );
    expect(a.n).toBeGreaterThan(0);
    expect(b).toEqual({ pid: a.pid, pool_rows: 0, tenant: bridge.id });
  });

  it('gives the next tenant on the same connection only its own rows', async () => {
    const a = await fx.inTenant(pool, async (em) => (await em.query(`SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM projects GROUP BY 1`))[0]);
    const b = await fx.inTenant(bridge, async (em) =>
      (await em.query(`SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM shared.projects) AS pool_rows, current_setting('app.tenant_id') AS tenant`))[0],
    );
    expect(a.n).toBeGreaterThan(0);
    expect(b).toEqual({ pid: a.pid, pool_rows: 0, tenant: bridge.id });
  });
});

describe('read units with TENANT_SETUP_PREPARED=false', () => {
  let fx: TenancyFixture;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  beforeAll(async () => {
    fx = await createTenancyFixture({ tenantSetupPrepared: false });
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier);
  });
  afterAll(async () => {
    await fx?.close();
  });

  it.each(TIERS)('sets the %s tenant for each statement without preparing anything on the connection', async (tier) => {
    const t = tenants[tier];
    await fx.inTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('unprepared')`));
    const rows = await fx.readInTenant(t, async (em) => [
      ...(await em.query(`SELECT current_setting('app.tenant_id') AS tenant, count(*)::int AS prepared FROM pg_prepared_statements`)),
      ...(await em.query(`SELECT count(*)::int AS n, current_setting('transaction_read_only') AS ro FROM projects WHERE name = $1`, ['unprepared'])),
    ]);
    expect(rows).toEqual([{ tenant: t.id, prepared: 0 }, { n: 1, ro: 'on' }]);
  });
});
