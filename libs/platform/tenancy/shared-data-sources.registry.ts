import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { PoolEntity } from '#strata/control-plane';
import { createTenantDataSource, serverKey } from './tenant-data-source.factory';

/**
 * One DataSource per pool server/database, shared by every pool and bridge tenant placed there.
 * Connections scale with servers, never with tenants or schemas.
 */
@Injectable()
export class SharedDataSources implements OnApplicationShutdown {
  private readonly sources = new Map<string, Promise<DataSource>>();

  constructor(@Inject(STRATA_CONFIG) private readonly config: StrataConfig) {}

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
        },
        'strata-shared',
        { tenantSetupPrepared: this.config.tenantSetupPrepared, placementFence: this.config.placementFence },
      );
      this.sources.set(key, ds);
      ds.catch(() => this.sources.get(key) === ds && this.sources.delete(key));
    }
    return ds;
  }

  /** Pool gauges per server, for readiness and metrics. */
  async stats(): Promise<Array<{ server: string; total: number; idle: number; waiting: number }>> {
    const out = [];
    for (const [server, pending] of this.sources) {
      const ds = await pending.catch(() => null);
      const pool = (ds?.driver as unknown as { master?: { totalCount: number; idleCount: number; waitingCount: number } })?.master;
      if (pool) out.push({ server, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
    }
    return out;
  }

  async onApplicationShutdown(): Promise<void> {
    const all = [...this.sources.values()];
    this.sources.clear();
    await Promise.all(all.map((p) => p.then((ds) => ds.destroy()).catch(() => undefined)));
  }
}
