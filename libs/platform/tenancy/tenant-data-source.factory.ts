import { DataSource } from 'typeorm';
import type { StrataConfig } from '#strata/common';
import { tenantEntities } from './tenant-entities.registry';
import { SERVER_BUDGET_OPTION, type ServerBudgetGate } from './server-connection.budget';
import { PLACEMENT_FENCE_OPTION, PREPARED_SETUP_OPTION, TenantPgClient, UNIT_BUDGETS_OPTION } from './tenant-pg.client';

export interface ServerAddress {
  host: string;
  port: number;
  database: string;
}

export interface DataSourceLimits {
  max: number;
  /** Recycle connections so bridge backends do not keep every schema's catalog cache forever. */
  maxUses?: number;
  maxLifetimeSeconds?: number;
  idleTimeoutMillis?: number;
  /** Connections pg-pool keeps open however long they idle (silo: the first, while the DataSource is resident). */
  min?: number;
  /** The per-server connection budget every connection of this DataSource counts against. */
  budget?: ServerBudgetGate;
  /** Longest a unit waits for a connection (pool full, server slow to accept) before it fails with 503. */
  acquireTimeoutMillis?: number;
}

export interface DataSourceDriverOptions {
  /** Prepare the read units' tenant setup once per connection (TenantPgClient); see TENANT_SETUP_PREPARED. */
  tenantSetupPrepared: boolean;
  /** Check the placement fence in the read setup (PLACEMENT_FENCE; off only to measure it). */
  placementFence: boolean;
  /** Per-statement budgets of read units (DATA_STATEMENT_TIMEOUT_MS, DATA_LOCK_TIMEOUT_MS). */
  budgets?: { statementTimeoutMs: number; lockTimeoutMs: number };
}

/** The driver options of every data-plane DataSource, from the process's config. */
export function dataSourceDriverOptions(config: Pick<StrataConfig, 'tenantSetupPrepared' | 'placementFence' | 'dataStatementTimeoutMs' | 'dataLockTimeoutMs'>): DataSourceDriverOptions {
  return {
    tenantSetupPrepared: config.tenantSetupPrepared,
    placementFence: config.placementFence,
    budgets: { statementTimeoutMs: config.dataStatementTimeoutMs, lockTimeoutMs: config.dataLockTimeoutMs },
  };
}

export const serverKey = (a: ServerAddress): string => `${a.host}:${a.port}/${a.database}`;

/**
 * A data-plane DataSource. `pipeline: true` lets node-postgres write the tenant setup and the
 * unit's first statement back to back, so entering a tenant costs no round trip of its own.
 */
export async function createTenantDataSource(
  address: ServerAddress,
  credentials: { user: string; password: string | undefined },
  limits: DataSourceLimits,
  applicationName: string,
  driver: DataSourceDriverOptions,
): Promise<DataSource> {
  const ds = new DataSource({
    type: 'postgres',
    host: address.host,
    port: address.port,
    database: address.database,
    username: credentials.user,
    password: credentials.password,
    entities: tenantEntities(),
    synchronize: false,
    installExtensions: false,
    applicationName,
    extra: {
      max: limits.max,
      pipeline: true,
      // Read units send each statement with its tenant setup under one Sync (tenant-pg.client.ts).
      Client: TenantPgClient,
      // pg-pool hands its options to each TenantPgClient it creates.
      [PREPARED_SETUP_OPTION]: driver.tenantSetupPrepared,
      [PLACEMENT_FENCE_OPTION]: driver.placementFence,
      [UNIT_BUDGETS_OPTION]: driver.budgets,
      maxUses: limits.maxUses || undefined,
      maxLifetimeSeconds: limits.maxLifetimeSeconds || undefined,
      idleTimeoutMillis: limits.idleTimeoutMillis ?? 30_000,
      min: limits.min ?? 0,
      [SERVER_BUDGET_OPTION]: limits.budget,
      // pg-pool bounds both the wait for a pooled connection and a new connection's handshake with it.
      connectionTimeoutMillis: limits.acquireTimeoutMillis ?? 5000,
    },
  });
  return ds.initialize();
}
