import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { closeRedisClient, createRedisClient, REDIS_CLIENT, type RedisClient } from './redis.client';

/**
 * One shared command connection per process. Global so jobs, cache and registry invalidation
 * reuse it instead of each opening their own; only blocking or subscriber work duplicates it.
 */
@Global()
@Module({
  providers: [{ provide: REDIS_CLIENT, inject: [STRATA_CONFIG], useFactory: (c: StrataConfig) => createRedisClient(c) }],
  exports: [REDIS_CLIENT],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly client: RedisClient) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.client) await closeRedisClient(this.client);
  }
}
