import { ClsService } from 'nestjs-cls';
import type { EntityManager } from 'typeorm';
import { ClientClosedRequestError, TenantBusyError, TenantUnavailableError, type UnitCancellation } from '#strata/tenancy/platform';
import { createTenancyFixture, rejectionOf, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;

/** A stand-in for an HTTP request's cancellation (responseCancellation): the test decides when the client leaves. */
function leavingClient(): UnitCancellation & { leave(): void } {
  const listeners = new Set<() => void>();
  let cancelled = false;
  return {
    get cancelled() {
      return cancelled;
    },
    onCancel(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    leave() {
      cancelled = true;
      for (const l of [...listeners]) l();
    },
  };
}

/** How many of the app role's backends are running a statement whose text is LIKE `like`. */
async function appBackends(fx: TenancyFixture, like: string): Promise<number> {
  const [{ n }] = await fx.ownerQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND state = 'active' AND query LIKE $2`,
    [fx.db.appRole, like],
  );
  return n;
}

describe('unit budgets and cancellation', () => {
  let fx: TenancyFixture;
  let cls: ClsService;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  beforeAll(async () => {
    fx = await createTenancyFixture({ dataStatementTimeoutMs: 400, dataLockTimeoutMs: 300 });
    cls = fx.module.get(ClsService);
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `budget-${tier}`);
  });
  afterAll(() => fx?.close());

  /** Runs a unit as an HTTP request would: in the tenant's context, with a client that can leave. */
  function asRequest<T>(tenant: TestTenant, client: UnitCancellation, unit: () => Promise<T>): Promise<T> {
    return fx.ctx.run({ tenant: tenant.placement }, () => {
      cls.set('cancellation', client);
      return unit();
    });
  }

  it.each(TIERS)('sets the statement and lock budgets for each %s unit only, leaving the connection at the role default', async (tier) => {
    const t = tenants[tier];
    const show = (em: EntityManager) => em.query(`SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l`);
    expect(await fx.inTenant(t, show)).toEqual([{ s: '400ms', l: '300ms' }]);
    expect(await fx.readInTenant(t, show)).toEqual([{ s: '400ms', l: '300ms' }]);
    const role = await fx.appClient(t.database);
    try {
      const [{ s }] = (await role.query(`SELECT current_setting('statement_timeout') AS s`)).rows;
      expect(s).not.toBe('400ms');
    } finally {
      await role.end();
    }
  });

  it.each(TIERS)('answers 503 statement_timeout when a %s statement outlasts DATA_STATEMENT_TIMEOUT_MS, in read and write units', async (tier) => {
    const t = tenants[tier];
    const write = await rejectionOf(fx.inTenant(t, (em) => em.query('SELECT pg_sleep(2)')));
    expect(write).toBeInstanceOf(TenantBusyError);
    expect((write as TenantBusyError).getStatus()).toBe(503);
    expect((write as TenantBusyError).headers['Retry-After']).toBe('1');
    expect((write as TenantBusyError).budget).toBe('statement_timeout');
    expect((write as TenantBusyError).code).toBe('statement_timeout');
    expect(await rejectionOf(fx.readInTenant(t, (em) => em.query('SELECT pg_sleep(2)')))).toBeInstanceOf(TenantBusyError);
    // The connection went back clean: the next unit runs.
    expect(await fx.readInTenant(t, (em) => em.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
  });

  it.each(TIERS)('rolls a %s write unit back when its client left before COMMIT, even though every statement succeeded', async (tier) => {
    const t = tenants[tier];
    const client = leavingClient();
    const name = `left-before-commit-${tier}`;
    const err = await rejectionOf(
      asRequest(t, client, () =>
        fx.conn.transaction(async (em) => {
          await em.query(`INSERT INTO projects (tenant_id, name) VALUES ($1, $2)`, [t.id, name]);
          client.leave();
        }),
      ),
    );
    expect(err).toBeInstanceOf(ClientClosedRequestError);
    expect(await fx.ownerQuery(`SELECT 1 FROM ${t.table('projects')} WHERE name = $1`, [name], t.database)).toEqual([]);
  });

  it.each(TIERS)('does not start a %s unit for a client that has already left', async (tier) => {
    const client = leavingClient();
    client.leave();
    expect(await rejectionOf(asRequest(tenants[tier], client, () => fx.conn.read((em) => em.query('SELECT 1'))))).toBeInstanceOf(ClientClosedRequestError);
  });
});

describe('a client that leaves while its statement runs', () => {
  let fx: TenancyFixture;
  let cls: ClsService;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  beforeAll(async () => {
    // The default budgets (15 s): only the cancel request can end the 10 s statement early.
    fx = await createTenancyFixture();
    cls = fx.module.get(ClsService);
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `leave-${tier}`);
  });
  afterAll(() => fx?.close());

  it.each(TIERS)('cancels a running %s statement on the server when the client leaves, and answers 499', async (tier) => {
    const t = tenants[tier];
    for (const unit of ['read', 'write'] as const) {
      const client = leavingClient();
      const marker = `pg_sleep(10) /* leave-${tier}-${unit} */`;
      const run = (em: EntityManager) => em.query(`SELECT ${marker}`);
      const pending = fx.ctx.run({ tenant: t.placement }, () => {
        cls.set('cancellation', client);
        return unit === 'read' ? fx.conn.read(run) : fx.conn.transaction(run);
      });
      const settled = rejectionOf(pending);
      expect(await waitFor(() => appBackends(fx, `%leave-${tier}-${unit}%`), (n) => n === 1, 3000, 5)).toBe(1);
      const leftAt = Date.now();
      client.leave();
      expect(await settled).toBeInstanceOf(ClientClosedRequestError);
      // pg hands the error over on ErrorResponse, a moment before the backend reports itself idle:
      // wait for that, bounded far below the 10 s the statement would otherwise have run.
      expect(await waitFor(() => appBackends(fx, `%leave-${tier}-${unit}%`), (n) => n === 0, 3000, 10)).toBe(0);
      expect(Date.now() - leftAt).toBeLessThan(3000);
    }
  });
});

describe('a client that leaves while its unit waits for a connection', () => {
  let fx: TenancyFixture;
  let cls: ClsService;
  let t: TestTenant;
  beforeAll(async () => {
    // One connection: a leaked one would leave the tenant's pool with none.
    fx = await createTenancyFixture({ dataPoolMax: 1, dataAcquireTimeoutMs: 1500 });
    cls = fx.module.get(ClsService);
    t = await fx.onboard('bridge', 'leave-waiting');
  });
  afterAll(() => fx?.close());

  it.each(['read', 'write'] as const)('gets its %s unit refused with 499 and hands the connection back once it gets it, so the pool does not shrink', async (unit) => {
    for (let round = 0; round < 3; round++) {
      // The only connection is busy while the leaving client's unit queues behind it.
      let releaseHolder!: () => void;
      const holding = fx.readInTenant(t, () => new Promise<void>((resolve) => (releaseHolder = resolve)));
      await new Promise((r) => setTimeout(r, 50));
      const client = leavingClient();
      const waiting = rejectionOf(
        fx.ctx.run({ tenant: t.placement }, () => {
          cls.set('cancellation', client);
          const run = (em: EntityManager) => em.query('SELECT 1');
          return unit === 'read' ? fx.conn.read(run) : fx.conn.transaction(run);
        }),
      );
      await new Promise((r) => setTimeout(r, 50));
      client.leave();
      releaseHolder();
      await holding;
      expect(await waiting).toBeInstanceOf(ClientClosedRequestError);
      // Had the abandoned unit kept the connection, this would wait out the acquire timeout (503).
      expect(await fx.readInTenant(t, (em) => em.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
    }
  });
});

describe('a unit whose connection the server ends between two of its statements', () => {
  let fx: TenancyFixture;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;
  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `lost-${tier}`);
  });
  afterAll(() => fx?.close());

  /** Ends the unit's own backend from outside and waits until its client has heard (its 'error' event). */
  async function terminateOwnBackend(em: EntityManager): Promise<void> {
    const [{ pid }] = (await em.query('SELECT pg_backend_pid() AS pid')) as Array<{ pid: number }>;
    await fx.ownerQuery('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(() => (em.queryRunner as { isReleased?: boolean } | undefined)?.isReleased === true, (gone) => gone, 2000, 10);
  }

  // Found by home-faults.e2e-spec under a server restart: TypeORM releases the QueryRunner on the
  // connection's 'error' event, the next statement threw QueryRunnerAlreadyReleasedError, a 500.
  it.each(TIERS)('answers 503 tenant_unavailable, not a 500, in %s write and read units, and the next unit runs', async (tier) => {
    const t = tenants[tier];
    const write = await rejectionOf(
      fx.inTenant(t, async (em) => {
        await terminateOwnBackend(em);
        await em.query('SELECT 1');
      }),
    );
    expect(write).toBeInstanceOf(TenantUnavailableError);
    const read = await rejectionOf(
      fx.readInTenant(t, async (em) => {
        await terminateOwnBackend(em);
        await em.query('SELECT 1');
      }),
    );
    expect(read).toBeInstanceOf(TenantUnavailableError);
    // The home's circuit opened on it; its trial unit closes it again within its backoff.
    const next = await waitFor(() => fx.readInTenant(t, (em) => em.query('SELECT 1 AS one')).catch((e: unknown) => e), (r) => Array.isArray(r), 5000, 50);
    expect(next).toEqual([{ one: 1 }]);
  });
});

describe('a write unit left idle inside its transaction', () => {
  let fx: TenancyFixture;
  let t: TestTenant;
  let neighbour: TestTenant;
  beforeAll(async () => {
    fx = await createTenancyFixture({ dataIdleInTransactionTimeoutMs: 300 });
    t = await fx.onboard('pool', 'idle-in-tx');
    neighbour = await fx.onboard('pool', 'idle-neighbour');
  });
  afterAll(() => fx?.close());

  it('has its session ended by the server after DATA_IDLE_IN_TRANSACTION_TIMEOUT_MS, nothing of it stored, and the pool serves the next unit', async () => {
    const name = 'idle-too-long';
    const err = await rejectionOf(
      fx.inTenant(t, async (em) => {
        expect(await em.query(`SELECT current_setting('idle_in_transaction_session_timeout') AS v`)).toEqual([{ v: '300ms' }]);
        await em.query(`INSERT INTO projects (tenant_id, name) VALUES ($1, $2)`, [t.id, name]);
        await new Promise((r) => setTimeout(r, 900));
        await em.query('SELECT 1');
      }),
    );
    // The tenant's own budget ran out: 503 idle_in_transaction_timeout, like a lock or a statement, not a server fault.
    expect(err).toBeInstanceOf(TenantBusyError);
    expect((err as TenantBusyError).budget).toBe('idle_in_transaction_timeout');
    expect(await fx.ownerQuery(`SELECT 1 FROM ${t.table('projects')} WHERE name = $1`, [name], t.database)).toEqual([]);
    // No circuit opened for the server: the next unit of a tenant on the same pool runs at once.
    expect(await fx.readInTenant(neighbour, (em) => em.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
    expect(await fx.readInTenant(t, (em) => em.query('SELECT 1 AS one'))).toEqual([{ one: 1 }]);
  });
});
