import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, PoolEntity } from '#strata/control-plane';
import { SharedDataSources, SiloDataSourceCache } from '#strata/tenancy';

const TIMEOUT_MS = 2000;

/** Readiness: the control plane, every registered pool server, and Redis when configured. */
@Injectable()
export class ReadinessService implements OnApplicationShutdown {
  private readonly redis?: Redis;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    private readonly shared: SharedDataSources,
    private readonly silos: SiloDataSourceCache,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
  ) {
    if (config.redisUrl) {
      this.redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
      this.redis.on('error', () => undefined); // reported through the probe, not as crashes
    }
  }

  async check() {
    const pools = await this.control.getRepository(PoolEntity).find({ order: { id: 'ASC' } }).catch(() => []);
    const checks: HealthIndicatorFunction[] = [
      () => this.indicators.check('control').attempt(async () => void (await this.control.query('SELECT 1'))).withTimeout(TIMEOUT_MS),
      ...pools.map((pool) => () => this.indicators.check(`pool:${pool.id}`).attempt(() => this.pingPool(pool)).withTimeout(TIMEOUT_MS)),
    ];
    const redis = this.redis;
    if (redis) {
      checks.push(() =>
        this.indicators
          .check('redis')
          .attempt(async () => {
            if (redis.status === 'wait' || redis.status === 'end') await redis.connect().catch(() => undefined);
            await redis.ping();
          })
          .withTimeout(TIMEOUT_MS),
      );
    }
    return this.health.check(checks);
  }

  private async pingPool(pool: PoolEntity): Promise<Record<string, unknown>> {
    if (pool.kind === 'silo') {
      // Silo servers hold no shared DataSource: ping the maintenance database directly.
      const client = new Client({
        host: pool.host,
        port: pool.port,
        database: pool.database,
        user: this.config.appDbUser,
        password: this.config.appDbPassword,
        connectionTimeoutMillis: TIMEOUT_MS,
      });
      await client.connect();
      try {
        await client.query('SELECT 1');
      } finally {
        await client.end();
      }
      const s = this.silos.stats();
      return { kind: pool.kind, siloDataSources: s.size, siloConnectionsReserved: s.reservedConnections, siloConnectionCap: s.maxConnections };
    }
    const ds = await this.shared.get(pool);
    await ds.query('SELECT 1');
    return { kind: pool.kind };
  }

  async onApplicationShutdown(): Promise<void> {
    this.redis?.disconnect();
  }
}
