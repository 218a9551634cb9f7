import { Inject, Injectable } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import { REDIS_CLIENT, RedisMonitor, SHARED_REDIS_CONNECTION, type RedisClient } from '#strata/cache';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, PoolEntity, withCredentials } from '#strata/control-plane';
import { checkFleetGuardrails, type GuardrailViolation } from '#strata/migrator';
import { HomeCircuits, TENANT_SCHEMA_VERSION, TierDrivers } from '#strata/tenancy/platform';

const TIMEOUT_MS = 2000;
/** The guardrail visits every target database: cache its verdict rather than run it per probe. */
const GUARDRAIL_TTL_MS = 60_000;

/**
 * Readiness fails only for what makes this instance unfit for every tenant: the control plane down,
 * or an RLS guardrail violation. A database that hosts some tenants (a pool server, a silo) being
 * down is reported as degraded and left to those tenants' fast 503s: every instance sees the same
 * database, so an orchestrator pulling this one would only take every other tenant's traffic with it.
 * Redis down is reported as degraded too (why and since when): tenants are served without it.
 */
@Injectable()
export class ReadinessService {
  private guardrails?: { at: number; result: Promise<GuardrailViolation[]> };

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    private readonly drivers: TierDrivers,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(TENANT_SCHEMA_VERSION) private readonly requiredVersion: string,
    // The process's shared client (libs/platform/cache), not one of its own; null when REDIS_URL is unset.
    @Inject(REDIS_CLIENT) private readonly redis: RedisClient,
    private readonly circuits: HomeCircuits,
    private readonly redisMonitor: RedisMonitor,
  ) {}

  async check() {
    const pools = await this.control.getRepository(PoolEntity).find({ order: { id: 'ASC' } }).catch(() => []);
    const checks: HealthIndicatorFunction[] = [
      () => this.indicators.check('control').attempt(async () => void (await this.control.query('SELECT 1'))).withTimeout(TIMEOUT_MS),
      ...pools.map((pool) => () => this.degradable(`pool:${pool.id}`, () => this.pingPool(pool))),
      // Homes whose circuit is open (their tenants answer 503 tenant_unavailable): listed, never fatal.
      () => this.indicators.check('homes').up({ degraded: this.circuits.degraded() }),
      // Drift is reported, never fatal: one lagging tenant answers 503 tenant_migrating by itself.
      () => this.indicators.check('migrations').attempt(() => this.drift()).withTimeout(TIMEOUT_MS),
      () => this.rlsGuardrails(),
    ];
    const redis = this.redis;
    if (redis) checks.push(() => this.redisHealth(redis));
    return this.health.check(checks);
  }

  /**
   * Every connection's status; while one is down, `degraded: true` (as degradable() reports a
   * database) with the reason, since when, and `message: "redis: down, <reason>, since <ISO time>"`
   * for the connection down longest. Never down: reads and writes of tenant data do not need Redis
   * (enqueues fail fast and outbox rows wait for the relay; the cache serves its loader), so taking
   * the instance out of rotation would only add an outage.
   */
  private async redisHealth(redis: Redis) {
    const session = this.indicators.check('redis');
    const states = this.redisMonitor.states();
    const connections = Object.fromEntries(states.map((c) => [c.name, c.status]));
    let down = states.filter((c) => c.status === 'down').sort((a, b) => a.since.getTime() - b.since.getTime())[0];
    if (!down) {
      // Nothing known to be down: ask, within REDIS_COMMAND_TIMEOUT_MS (connecting included).
      let timer: NodeJS.Timeout | undefined;
      const ms = this.config.redisCommandTimeoutMs;
      try {
        await Promise.race([
          (async () => {
            if (redis.status === 'wait') await redis.connect();
            await redis.ping();
          })(),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))),
        ]);
      } catch (err) {
        down = { name: SHARED_REDIS_CONNECTION, status: 'down', since: new Date(), reason: (err as Error).message };
      } finally {
        clearTimeout(timer);
      }
    }
    if (!down) return session.up({ connections });
    const reason = down.reason ?? 'no connection';
    const since = down.since.toISOString();
    return session.up({ degraded: true, reason, since, message: `redis: down, ${reason}, since ${since}`, connections });
  }

  /** How many targets are behind the tenant schema version this release needs, and which. */
  async drift(): Promise<{ required: string; targets: number; behind: number; behindTargets: string[] }> {
    const [row] = await this.control.query(
      `WITH targets AS (
         SELECT 'pool:' || id AS key, schema_version AS version FROM control.pools WHERE kind = 'pool'
         UNION ALL
         SELECT tier || ':' || slug, schema_version FROM control.tenants WHERE tier <> 'pool' AND status NOT IN ('provisioning', 'failed', 'deleting', 'deleted'))
       SELECT count(*)::int AS targets,
              (count(*) FILTER (WHERE version < $1))::int AS behind,
              coalesce((array_agg(key ORDER BY key) FILTER (WHERE version < $1))[1:20], '{}') AS sample
         FROM targets`,
      [this.requiredVersion],
    );
    return { required: this.requiredVersion, targets: row.targets, behind: row.behind, behindTargets: row.sample };
  }

  /** RLS guardrails on every target; a violation makes the instance not ready (it names table and target). */
  private async rlsGuardrails() {
    const now = Date.now();
    if (!this.guardrails || now - this.guardrails.at > GUARDRAIL_TTL_MS) {
      const result = checkFleetGuardrails({
        url: withCredentials(this.config.databaseUrl, this.config.controlDbUser, this.config.controlDbPassword),
        appRole: this.config.appDbUser,
      });
      result.catch(() => undefined);
      this.guardrails = { at: now, result };
    }
    const session = this.indicators.check('rls');
    try {
      const found = await this.guardrails.result;
      const violations = found.filter((v) => !v.unreachable);
      const unreachable = found.filter((v) => v.unreachable).map((v) => v.target);
      const degraded: Record<string, unknown> = unreachable.length ? { unchecked: unreachable.slice(0, 50), uncheckedCount: unreachable.length } : {};
      return violations.length ? session.down({ violations: violations.slice(0, 50), count: violations.length, ...degraded }) : session.up(degraded);
    } catch (err) {
      this.guardrails = undefined;
      return session.down({ message: (err as Error).message });
    }
  }

  /** A check whose failure is reported (`degraded` with the reason) without making the instance unready. */
  private async degradable(key: string, probe: () => Promise<Record<string, unknown>>) {
    const session = this.indicators.check(key);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      });
      return session.up(await Promise.race([probe(), timeout]));
    } catch (err) {
      return session.up({ degraded: true, reason: (err as Error)?.message ?? String(err) });
    } finally {
      clearTimeout(timer);
    }
  }

  private pingPool(pool: PoolEntity): Promise<Record<string, unknown>> {
    return this.drivers.of(pool.kind).ping(pool);
  }
}
