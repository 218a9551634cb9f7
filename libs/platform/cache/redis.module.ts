import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { closeRedisClient, createRedisClient, REDIS_CLIENT, type RedisClient } from './redis.client';
import { RedisMonitor } from './redis.monitor';

/**
 * One shared command connection per process, and the monitor every Redis connection of the
 * process reports to. Global so jobs, cache and registry invalidation reuse the client instead of
 * each opening their own; only blocking or subscriber work duplicates it.
 */
@Global()
@Module({
  providers: [
    RedisMonitor,
    { provide: REDIS_CLIENT, inject: [STRATA_CONFIG, RedisMonitor], useFactory: (c: StrataConfig, m: RedisMonitor) => createRedisClient(c, m) },
  ],
  exports: [REDIS_CLIENT, RedisMonitor],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly client: RedisClient) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.client) await closeRedisClient(this.client);
  }
}
