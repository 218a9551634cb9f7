import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { LOGIN_THROTTLE } from '#strata/auth';
import { LoginThrottle } from './login.throttle';
import { RateLimitInterceptor } from './rate-limit.interceptor';
import { RequestRateLimits } from './request.rate-limits';

/**
 * Rate limits at the HTTP edge: the global interceptor limiting authenticated tenant requests (per
 * tenant by plan, per user), and the anonymous routes' limits, provided globally as auth's
 * LOGIN_THROTTLE port. Needs the (global) config, registry, plan catalogue and Redis client.
 */
@Global()
@Module({
  providers: [
    RequestRateLimits,
    LoginThrottle,
    { provide: LOGIN_THROTTLE, useExisting: LoginThrottle },
    { provide: APP_INTERCEPTOR, useClass: RateLimitInterceptor },
  ],
  exports: [RequestRateLimits, LoginThrottle, LOGIN_THROTTLE],
})
export class RateLimitsModule {}
