import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type IRateLimiterOptions, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { REDIS_CLIENT, type RedisClient } from '#strata/cache';
import type { LoginThrottlePort } from '#strata/auth';
import { RateLimitsErrorCode, rateLimitsError } from './rate-limits.errors';
import { rateLimitKeyPrefix } from './request.rate-limits';

/**
 * Counted in Redis (shared by every instance) with rate-limiter-flexible; when Redis is down or
 * absent each instance counts in memory (the limit then holds per instance, not not at all).
 * Anonymous routes cost a scrypt or a control-plane query anyway, so one Redis round trip here
 * is not the hot path the tenant limits avoid it on.
 */
/**
 * The longest window the in-memory store can keep: it expires keys with setTimeout, which Node
 * fires at once (after 1 ms) for anything past 2^31 - 1 ms (~24.8 days). Used without Redis, and
 * as the Redis limiters' insurance.
 */
const MEMORY_STORE_MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000);

function limiter(config: StrataConfig, redis: RedisClient, what: string, points: number, duration: number): RateLimiterAbstract {
  if (duration > MEMORY_STORE_MAX_SECONDS) throw new Error(`login limits: a ${what} window of ${duration} s is longer than the in-memory store can hold (${MEMORY_STORE_MAX_SECONDS} s)`);
  const options: IRateLimiterOptions = { keyPrefix: rateLimitKeyPrefix(config, what), points, duration };
  const memory = new RateLimiterMemory(options);
  return redis ? new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true, insuranceLimiter: memory }) : memory;
}

/**
 * How long a successful login makes its address known to the account (exempt from the account-wide
 * lock): 24 days, within what the in-memory store can hold (30 days was forgotten at once without Redis).
 */
export const KNOWN_ADDRESS_SECONDS = 24 * 86_400;

function refused(res: RateLimiterRes, message: string): never {
  const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  throw rateLimitsError(RateLimitsErrorCode.rateLimited, `${message}; retry in ${seconds} s`, { 'Retry-After': String(seconds) });
}

/**
 * Login limits. Two counts, and why the second is per address:
 * - every attempt per client address (LOGIN_RATE_LIMIT_PER_ADDRESS per LOGIN_RATE_WINDOW_SECONDS),
 *   whatever the account: one address cannot spray or guess fast;
 * - failures per account *and address*: LOGIN_LOCKOUT_FAILURES failures within
 *   LOGIN_LOCKOUT_SECONDS lock that address out of that account (correct password or not, so the
 *   lock cannot be used as an oracle) until the window ends; a success clears it.
 * - failures per account from every address: past LOGIN_ACCOUNT_FAILURES within
 *   LOGIN_LOCKOUT_SECONDS (a guess spread over many addresses), the account refuses addresses it
 *   does not know until the window ends. An address is known to an account for
 *   KNOWN_ADDRESS_SECONDS after a successful login from it, and a success from it clears the
 *   account's count.
 * A lockout counted per account alone would let anyone lock a victim out by failing on purpose,
 * for as long as they keep failing. Here an attacker only locks their own address out; the
 * account-wide count never locks out an address the owner has logged in from. What remains: an
 * owner on a new address can be kept out while a distributed attack goes on (they log in from a
 * known one), and clients behind one NAT share an address.
 */
@Injectable()
export class LoginThrottle implements LoginThrottlePort {
  private readonly logger = new Logger(LoginThrottle.name);
  private readonly attempts: RateLimiterAbstract;
  private readonly failures: RateLimiterAbstract;
  private readonly accountFailures: RateLimiterAbstract;
  private readonly knownAddresses: RateLimiterAbstract;
  private readonly anonymousRequests: RateLimiterAbstract;
  private readonly lockoutFailures: number;

  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Optional() @Inject(REDIS_CLIENT) redis: RedisClient = null,
  ) {
    this.attempts = limiter(config, redis, 'login-address', config.loginRateLimitPerAddress, config.loginRateWindowSeconds);
    this.failures = limiter(config, redis, 'login-lockout', config.loginLockoutFailures, config.loginLockoutSeconds);
    this.accountFailures = limiter(config, redis, 'login-account', config.loginAccountFailures, config.loginLockoutSeconds);
    // A key–value store with expiry here: set() marks an (account, address) pair known.
    this.knownAddresses = limiter(config, redis, 'login-known', 1, KNOWN_ADDRESS_SECONDS);
    this.anonymousRequests = limiter(config, redis, 'anonymous', config.anonymousRateLimitPerMinute, 60);
    this.lockoutFailures = config.loginLockoutFailures;
  }

  /** Before the password is checked: counts the attempt; 429 when the address is over its limit or locked out of the account. */
  async beforeAttempt(address: string, account: string): Promise<void> {
    if (!this.config.rateLimitsEnabled) return;
    const pair = `${account}:${address}`;
    const [attempt, failures, accountWide, known] = await Promise.all([
      this.refusal(this.attempts.consume(address)),
      this.answer(this.failures.get(pair)),
      this.answer(this.accountFailures.get(account)),
      this.answer(this.knownAddresses.get(pair)),
    ]);
    if (attempt) refused(attempt, 'too many login attempts from this address');
    if (failures && failures.consumedPoints >= this.lockoutFailures) refused(failures, 'too many failed logins to this account from this address');
    if (accountWide && accountWide.consumedPoints >= this.config.loginAccountFailures && !known) {
      refused(accountWide, 'too many failed logins to this account; log in from an address you used before, or later');
    }
  }

  async failed(address: string, account: string): Promise<void> {
    if (!this.config.rateLimitsEnabled) return;
    await Promise.all([this.answer(this.failures.penalty(`${account}:${address}`)), this.answer(this.accountFailures.penalty(account))]);
  }

  /** A success clears the address's failures and the account's, and makes the address known to the account. */
  async succeeded(address: string, account: string): Promise<void> {
    if (!this.config.rateLimitsEnabled) return;
    const pair = `${account}:${address}`;
    await Promise.all([
      this.failures.delete(pair),
      this.accountFailures.delete(account),
      this.knownAddresses.set(pair, 1, KNOWN_ADDRESS_SECONDS),
    ]).catch((err: Error) => this.logger.warn(`login limits not updated after a success: ${err.message}`));
  }

  /**
   * The other anonymous auth routes (refresh, logout, tenants, accept an invitation) do work for
   * anyone who asks: ANONYMOUS_RATE_LIMIT_PER_MINUTE per client address, then 429.
   */
  async anonymous(address: string): Promise<void> {
    if (!this.config.rateLimitsEnabled) return;
    const refusal = await this.refusal(this.anonymousRequests.consume(address));
    if (refusal) refused(refusal, 'too many requests from this address');
  }

  /** A consume's refusal (its RateLimiterRes), or null when it was allowed or neither store answered (logged: let through). */
  private async refusal(consumed: Promise<RateLimiterRes>): Promise<RateLimiterRes | null> {
    try {
      await consumed;
      return null;
    } catch (res) {
      if (res instanceof RateLimiterRes) return res;
      this.logger.warn(`rate limit not counted: ${(res as Error).message}`);
      return null;
    }
  }

  /** A get's or penalty's answer, or null when neither store answered (logged). */
  private async answer(p: Promise<RateLimiterRes | null>): Promise<RateLimiterRes | null> {
    try {
      return await p;
    } catch (err) {
      this.logger.warn(`rate limit not counted: ${(err as Error).message}`);
      return null;
    }
  }
}
