import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { REDIS_CLIENT, type RedisClient } from '#strata/cache';
import { OnboardingErrorCode as E, onboardingError } from './onboarding.errors';

/**
 * Signups per client address, counted in Redis (shared by every API instance) with
 * rate-limiter-flexible. When Redis is down, or absent (`npm start` without REDIS_URL), each
 * process counts in memory instead: the limit then holds per instance rather than not at all.
 * Keys are per control plane (its database name), so deployments sharing a Redis count apart.
 */
@Injectable()
export class SignupRateLimiter {
  private readonly logger = new Logger('SignupRateLimiter');
  private readonly limiter: RateLimiterAbstract;
  private connecting: Promise<void> | undefined;

  constructor(
    @Inject(STRATA_CONFIG) config: StrataConfig,
    @Optional() @Inject(REDIS_CLIENT) private readonly redis: RedisClient = null,
  ) {
    const options = {
      keyPrefix: `strata:rl:signup:${decodeURIComponent(new URL(config.databaseUrl).pathname.slice(1))}`,
      points: config.signupRateLimit,
      duration: config.signupRateWindowSeconds,
    };
    const memory = new RateLimiterMemory(options);
    this.limiter = redis ? new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: memory }) : memory;
  }

  /** Counts one signup of `address`; 429 signup_rate_limited with Retry-After past the limit. */
  async consume(address: string): Promise<void> {
    // The shared client connects lazily, on its first command; with rejectIfRedisNotReady the first
    // signups after a start would be counted in this process's memory only (one more per instance).
    if (this.redis?.status === 'wait') this.connecting ??= this.redis.connect().catch(() => undefined);
    await this.connecting;
    try {
      await this.limiter.consume(address);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) {
        // Neither store answered: let the signup through rather than turn every one away.
        this.logger.warn(`signup rate limit not counted: ${(res as Error).message}`);
        return;
      }
      const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw onboardingError(E.signupRateLimited, `too many signups from this address; retry in ${seconds} s`, { 'Retry-After': String(seconds) });
    }
  }
}
