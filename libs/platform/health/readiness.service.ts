import { Inject, Injectable } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthIndicatorFunction } from '@nestjs/terminus';
import { REDIS_CLIENT, type RedisClient } from '#strata/cache';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, PoolEntity, withCredentials } from '#strata/control-plane';
import { checkFleetGuardrails, type GuardrailViolation } from '#strata/migrator';
import { TENANT_SCHEMA_VERSION, TierDrivers } from '#strata/tenancy/platform';

const TIMEOUT_MS = 2000;
/** The guardrail visits every target database: cache its verdict rather than run it per probe. */
const GUARDRAIL_TTL_MS = 60_000;

/** Readiness: the control plane, every registered pool server, and Redis when configured. */
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
  ) {}

  async check() {
    const pools = await this.control.getRepository(PoolEntity).find({ order: { id: 'ASC' } }).catch(() => []);
    const checks: HealthIndicatorFunction[] = [
      () => this.indicators.check('control').attempt(async () => void (await this.control.query('SELECT 1'))).withTimeout(TIMEOUT_MS),
      ...pools.map((pool) => () => this.indicators.check(`pool:${pool.id}`).attempt(() => this.pingPool(pool)).withTimeout(TIMEOUT_MS)),
      // Drift is reported, never fatal: one lagging tenant answers 503 tenant_migrating by itself.
      () => this.indicators.check('migrations').attempt(() => this.drift()).withTimeout(TIMEOUT_MS),
      () => this.rlsGuardrails(),
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

  /** How many targets are behind the tenant schema version this release needs, and which. */
  async drift(): Promise<{ required: string; targets: number; behind: number; behindTargets: string[] }> {
    const [row] = await this.control.query(
      `WITH targets AS (
         SELECT 'pool:' || id AS key, schema_version AS version FROM control.pools WHERE kind = 'pool'
         UNION ALL
         SELECT tier || ':' || slug, schema_version FROM control.tenants WHERE tier <> 'pool' AND status NOT IN ('deleting', 'deleted'))
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
      const violations = await this.guardrails.result;
      return violations.length ? session.down({ violations: violations.slice(0, 50), count: violations.length }) : session.up();
    } catch (err) {
      this.guardrails = undefined;
      return session.down({ message: (err as Error).message });
    }
  }

  private pingPool(pool: PoolEntity): Promise<Record<string, unknown>> {
    return this.drivers.of(pool.kind).ping(pool);
  }
}
