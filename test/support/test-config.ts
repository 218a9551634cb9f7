import type { StrataConfig } from '#strata/common';
import type { TestDatabase } from './test-database';

export const TEST_JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';

export function testConfig(db: TestDatabase, overrides: Partial<StrataConfig> = {}): StrataConfig {
  return {
    port: 0,
    databaseUrl: db.ownerUrl,
    appDbUser: db.appRole,
    appDbPassword: undefined,
    controlDbUser: `${db.appRole}_control`,
    controlDbPassword: undefined,
    jwtSecret: TEST_JWT_SECRET,
    jwksUrl: undefined,
    jwtIssuer: undefined,
    tokenTtlSeconds: 3600,
    tokenMaxAgeSeconds: 86_400,
    baseDomain: 'strata.test',
    redisUrl: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    registryCacheTtlMs: 200,
    dataPoolMax: 10,
    dataAcquireTimeoutMs: 5000,
    bridgeConnMaxUses: 5000,
    bridgeConnMaxLifetimeSeconds: 300,
    tenantSetupPrepared: true,
    siloPoolMax: 2,
    siloMaxConnections: 20,
    siloIdleMs: 60_000,
    siloAcquireTimeoutMs: 5000,
    placementFence: true,
    movesExecutor: true,
    moveLeaseMs: 3000,
    moveSourceRetentionMs: 0,
    moveCutoverLockTimeoutMs: 2000,
    moveCopyRestRatio: 0,
    ...overrides,
  };
}

