import { Test, type TestingModule } from '@nestjs/testing';
import { ClsModule } from 'nestjs-cls';
import { Client, escapeIdentifier } from 'pg';
import type { EntityManager } from 'typeorm';
import { StrataConfigModule, type StrataConfig } from '#strata/common';
import { ControlPlaneModule, TenantRegistry, type Tier } from '#strata/control-plane';
import { TenancyModule, TenantConnectionManager, TenantContext, type TenantPlacement, placementOf } from '#strata/tenancy/platform';
import { AdminModule, TenantAdminService } from '#strata/admin';
import { MigratorModule } from '#strata/migrator';
import { createTestDatabase, uniqueSlug, type TestDatabase } from './test-database';
import { testConfig } from './test-config';
import { urlFor } from './test-env';

/** A tenant onboarded through TenantAdminService, with where its rows physically live. */
export interface TestTenant {
  id: string;
  slug: string;
  tier: Tier;
  placement: TenantPlacement;
  /** The database holding its tables: the test clone for pool/bridge, its own database for silo. */
  database: string;
  schema: string;
  /** Schema-qualified, quoted table name, for owner-connection queries. */
  table(name: 'projects' | 'tasks' | 'invoices' | 'usage_counters'): string;
}

export interface TenancyFixture {
  db: TestDatabase;
  config: StrataConfig;
  module: TestingModule;
  ctx: TenantContext;
  conn: TenantConnectionManager;
  registry: TenantRegistry;
  admin: TenantAdminService;
  onboard(tier: Tier, base?: string): Promise<TestTenant>;
  /** One unit of work in the tenant's context. */
  inTenant<T>(tenant: TestTenant | TenantPlacement, work: (em: EntityManager) => Promise<T>): Promise<T>;
  /** The same as inTenant, through TenantConnectionManager.read (a read-only unit). */
  readInTenant<T>(tenant: TestTenant | TenantPlacement, work: (em: EntityManager) => Promise<T>): Promise<T>;
  /** A cached superuser (owner) connection to `database` (default: the test clone). Bypasses RLS. */
  owner(database?: string): Promise<Client>;
  ownerQuery<R = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<R[]>;
  /** A new, uncached connection as the application role; the caller ends it. */
  appClient(database?: string): Promise<Client>;
  close(): Promise<void>;
}

/**
 * A Nest testing module with the real tenancy stack (config, CLS, control plane, tenancy, admin)
 * on a fresh cloned database. close() shuts the module down and drops the clone and its silos.
 */
export async function createTenancyFixture(overrides: Partial<StrataConfig> = {}): Promise<TenancyFixture> {
  const db = await createTestDatabase();
  const config = testConfig(db, overrides);
  const owners = new Map<string, Promise<Client>>();
  let module: TestingModule | undefined;
  try {
    module = await Test.createTestingModule({
      imports: [StrataConfigModule.forRoot(config), ClsModule.forRoot({ global: true }), ControlPlaneModule, MigratorModule, TenancyModule, AdminModule],
    }).compile();
    await module.init();
  } catch (err) {
    await module?.close().catch(() => undefined);
    await db.drop();
    throw err;
  }
  const mod = module;
  const ctx = mod.get(TenantContext);
  const conn = mod.get(TenantConnectionManager);
  const registry = mod.get(TenantRegistry);
  const admin = mod.get(TenantAdminService);

  const owner = (database = db.name): Promise<Client> => {
    let c = owners.get(database);
    if (!c) {
      const client = new Client({ connectionString: urlFor(database), application_name: 'strata-test-owner' });
      // A test that drops a database this client is connected to ends it; that is not a failure.
      client.on('error', () => owners.delete(database));
      c = client.connect().then(() => client);
      owners.set(database, c);
    }
    return c;
  };

  return {
    db,
    config,
    module: mod,
    ctx,
    conn,
    registry,
    admin,
    async onboard(tier, base = tier) {
      const view = await admin.create({ slug: uniqueSlug(base), name: `${base} inc`, tier });
      const rec = await registry.findById(view.id);
      if (!rec) throw new Error(`tenant ${view.slug} not found after onboarding`);
      const placement = placementOf(rec);
      const database = placement.databaseName ?? db.name;
      const schema = placement.schemaName;
      return {
        id: view.id,
        slug: view.slug,
        tier,
        placement,
        database,
        schema,
        table: (name) => `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`,
      };
    },
    inTenant(tenant, work) {
      const placement = 'placement' in tenant ? tenant.placement : tenant;
      return ctx.run({ tenant: placement }, () => conn.transaction(work));
    },
    readInTenant(tenant, work) {
      const placement = 'placement' in tenant ? tenant.placement : tenant;
      return ctx.run({ tenant: placement }, () => conn.read(work));
    },
    owner,
    async ownerQuery(sql, params, database) {
      return (await (await owner(database)).query(sql, params)).rows;
    },
    async appClient(database = db.name) {
      const url = new URL(urlFor(database));
      url.username = db.appRole;
      const client = new Client({ connectionString: url.toString(), application_name: 'strata-test-app-role' });
      await client.connect();
      return client;
    },
    async close() {
      try {
        await mod.close();
      } finally {
        for (const c of owners.values()) await c.then((cl) => cl.end()).catch(() => undefined);
        owners.clear();
        await db.drop();
      }
    },
  };
}

/** The error a promise rejected with (fails the test if it resolved). */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string; driverError?: { code?: string } }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The PostgreSQL SQLSTATE of a TypeORM QueryFailedError or a pg error. */
export function sqlState(err: { code?: string; driverError?: { code?: string } }): string | undefined {
  return err.driverError?.code ?? err.code;
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until `done` holds or `timeoutMs` passes; returns the last value. */
export async function waitFor<T>(probe: () => Promise<T> | T, done: (v: T) => boolean, timeoutMs = 3000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() > deadline) return v;
    await sleep(everyMs);
  }
}
