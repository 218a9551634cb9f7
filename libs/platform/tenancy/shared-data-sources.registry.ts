import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { PoolEntity } from '#strata/control-plane';
import { ServerConnectionBudget, serverOf } from './server-connection.budget';
import { createTenantDataSource, dataSourceDriverOptions, serverKey } from './tenant-data-source.factory';

/** The parts of pg-pool the reclaimer uses (all public). */
interface IdlePool {
  idleCount: number;
  waitingCount: number;
  connect(): Promise<{ release(destroy?: boolean): void }>;
}

/**
 * One DataSource per pool server/database, shared by every pool and bridge tenant placed there.
 * Connections scale with servers, never with tenants or schemas.
 */
@Injectable()
export class SharedDataSources implements OnApplicationShutdown {
  private readonly sources = new Map<string, Promise<DataSource>>();

  private readonly pools = new Map<string, { host: string; pool: IdlePool }>();
  private readonly stopReclaiming: () => void;

  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    private readonly budget: ServerConnectionBudget,
  ) {
    this.stopReclaiming = budget.onPressure((host) => this.closeOneIdle(host));
  }

  /**
   * Another DataSource waits for a connection to `host` (a silo tenant, another pool database):
   * close one idle shared connection there, through pg-pool's public API — check the idle
   * connection out (pg-pool hands idle ones first) and release it as broken, which ends it — and
   * only when nobody waits for this pool (so the checkout cannot take a connection someone needs).
   */
  private closeOneIdle(host: string): boolean {
    for (const { host: h, pool } of this.pools.values()) {
      if (h !== host || pool.idleCount === 0 || pool.waitingCount > 0) continue;
      pool.connect().then(
        (client) => client.release(true),
        () => undefined,
      );
      return true;
    }
    return false;
  }

  get(pool: PoolEntity): Promise<DataSource> {
    const key = serverKey(pool);
    let ds = this.sources.get(key);
    if (!ds) {
      ds = createTenantDataSource(
        pool,
        { user: this.config.appDbUser, password: this.config.appDbPassword },
        {
          max: Math.min(pool.maxConnections, this.config.dataPoolMax),
          maxUses: this.config.bridgeConnMaxUses,
          maxLifetimeSeconds: this.config.bridgeConnMaxLifetimeSeconds,
          acquireTimeoutMillis: this.config.dataAcquireTimeoutMs,
          budget: { budget: this.budget, kind: 'shared' },
        },
        'strata-shared',
        dataSourceDriverOptions(this.config),
      );
      this.sources.set(key, ds);
      const host = serverOf(pool);
      ds.then(
        (opened) => {
          const pool = (opened.driver as unknown as { master?: IdlePool }).master;
          if (pool && this.sources.get(key) === ds) this.pools.set(key, { host, pool });
        },
        () => this.sources.get(key) === ds && this.sources.delete(key),
      );
    }
    return ds;
  }

  /** Pool gauges per database (`server` is host:port/database; `host` is host:port, the budget's unit), for readiness and metrics. */
  async stats(): Promise<Array<{ server: string; host: string; total: number; idle: number; waiting: number }>> {
    const out = [];
    for (const [server, pending] of this.sources) {
      const ds = await pending.catch(() => null);
      const pool = (ds?.driver as unknown as { master?: { totalCount: number; idleCount: number; waitingCount: number } })?.master;
      if (pool) out.push({ server, host: this.pools.get(server)?.host ?? server, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    }
    return out;
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopReclaiming();
    const all = [...this.sources.values()];
    this.sources.clear();
    this.pools.clear();
    await Promise.all(all.map((p) => p.then((ds) => ds.destroy()).catch(() => undefined)));
  }
}
