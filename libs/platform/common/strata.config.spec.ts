import { loadStrataConfig } from './strata.config';

const base = { DATABASE_URL: 'postgres://o@h/db', AUTH_JWT_SECRET: 'x'.repeat(32) };

describe('configuration', () => {
  it('keeps self-service signup off unless SIGNUP_ENABLED says so, and onboarding executors on', () => {
    expect(loadStrataConfig(base)).toMatchObject({ signupEnabled: false, onboardingExecutor: true, onboardingMaxAttempts: 3 });
    expect(loadStrataConfig({ ...base, SIGNUP_ENABLED: 'true' }).signupEnabled).toBe(true);
    expect(() => loadStrataConfig({ ...base, ONBOARDING_MAX_ATTEMPTS: '0' })).toThrow(/ONBOARDING_MAX_ATTEMPTS/);
  });

  it('applies defaults', () => {
    const c = loadStrataConfig(base);
    expect(c).toMatchObject({ port: 3000, appDbUser: 'strata_app', siloPoolMax: 10, siloMaxConnections: 40, dataPoolMax: 10, tenantSetupPrepared: true });
  });

  it('turns the prepared tenant setup off with TENANT_SETUP_PREPARED=false and refuses anything but a boolean', () => {
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'false' }).tenantSetupPrepared).toBe(false);
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: '0' }).tenantSetupPrepared).toBe(false);
    expect(loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'true' }).tenantSetupPrepared).toBe(true);
    expect(() => loadStrataConfig({ ...base, TENANT_SETUP_PREPARED: 'no' })).toThrow(/TENANT_SETUP_PREPARED/);
  });

  it('serves the OpenAPI document by default, except under NODE_ENV=production unless OPENAPI_ENABLED says so', () => {
    expect(loadStrataConfig(base).openapiEnabled).toBe(true);
    expect(loadStrataConfig({ ...base, NODE_ENV: 'development' }).openapiEnabled).toBe(true);
    expect(loadStrataConfig({ ...base, NODE_ENV: 'production' }).openapiEnabled).toBe(false);
    expect(loadStrataConfig({ ...base, NODE_ENV: 'production', OPENAPI_ENABLED: 'true' }).openapiEnabled).toBe(true);
    expect(loadStrataConfig({ ...base, OPENAPI_ENABLED: 'false' }).openapiEnabled).toBe(false);
    expect(() => loadStrataConfig({ ...base, OPENAPI_ENABLED: 'maybe' })).toThrow(/OPENAPI_ENABLED/);
  });

  it('turns rate limits on by default with their documented numbers, and refuses a burst under one second or a sync under 10 ms', () => {
    expect(loadStrataConfig(base)).toMatchObject({
      rateLimitsEnabled: true,
      rateLimitBurstSeconds: 2,
      rateLimitUserPerSecond: 20,
      rateLimitSyncMs: 100,
      rateLimitMaxKeys: 20_000,
      loginRateLimitPerAddress: 30,
      loginRateWindowSeconds: 60,
      loginLockoutFailures: 5,
      loginLockoutSeconds: 300,
      loginAccountFailures: 50,
      anonymousRateLimitPerMinute: 60,
      hashConcurrency: 2,
      hashQueueMax: 64,
    });
    expect(loadStrataConfig({ ...base, RATE_LIMITS_ENABLED: 'false', RATE_LIMIT_USER_PER_SECOND: '0.5' })).toMatchObject({ rateLimitsEnabled: false, rateLimitUserPerSecond: 0.5 });
    expect(() => loadStrataConfig({ ...base, RATE_LIMIT_BURST_SECONDS: '0.5' })).toThrow(/RATE_LIMIT_BURST_SECONDS/);
    expect(() => loadStrataConfig({ ...base, RATE_LIMIT_SYNC_MS: '5' })).toThrow(/RATE_LIMIT_SYNC_MS/);
    expect(() => loadStrataConfig({ ...base, HASH_CONCURRENCY: '0' })).toThrow(/HASH_CONCURRENCY/);
  });

  it('refuses a short signing secret, naming the variable', () => {
    expect(() => loadStrataConfig({ ...base, AUTH_JWT_SECRET: 'short' })).toThrow(/AUTH_JWT_SECRET/);
  });

  it('refuses a non-integer number, naming the variable', () => {
    expect(() => loadStrataConfig({ ...base, SILO_MAX_CONNECTIONS: 'lots' })).toThrow(/SILO_MAX_CONNECTIONS/);
  });

  it('refuses a silo budget smaller than one silo pool', () => {
    expect(() => loadStrataConfig({ ...base, SILO_POOL_MAX: '5', SILO_MAX_CONNECTIONS: '4' })).toThrow(/SILO_MAX_CONNECTIONS/);
  });

  it('keeps up to 1000 silo DataSources and holds a silo connection 20 ms by default, both settable', () => {
    expect(loadStrataConfig(base)).toMatchObject({ siloDataSourcesMax: 1000, siloConnectionHoldMs: 20 });
    expect(loadStrataConfig({ ...base, SILO_DATASOURCES_MAX: '50', SILO_CONNECTION_HOLD_MS: '0' })).toMatchObject({ siloDataSourcesMax: 50, siloConnectionHoldMs: 0 });
    expect(() => loadStrataConfig({ ...base, SILO_DATASOURCES_MAX: '0' })).toThrow(/SILO_DATASOURCES_MAX/);
  });

  it('caps connections per database server across tiers, refusing a cap smaller than one pool', () => {
    expect(loadStrataConfig(base)).toMatchObject({ dbServerMaxConnections: 60, dbServerAcquireTimeoutMs: 2000, siloResidencyMs: 2000, siloSpareIdleMs: 1000, metricsTenantLabelsMax: 100 });
    expect(() => loadStrataConfig({ ...base, DB_SERVER_MAX_CONNECTIONS: '8' })).toThrow(/DB_SERVER_MAX_CONNECTIONS/);
    expect(() => loadStrataConfig({ ...base, DATA_POOL_MAX: '4', SILO_POOL_MAX: '4', DB_SERVER_MAX_CONNECTIONS: '3' })).toThrow(/DB_SERVER_MAX_CONNECTIONS/);
    expect(loadStrataConfig({ ...base, DATA_POOL_MAX: '4', SILO_POOL_MAX: '4', SILO_MAX_CONNECTIONS: '4', DB_SERVER_MAX_CONNECTIONS: '4' }).dbServerMaxConnections).toBe(4);
  });

  it('caches the registry 60 s when Redis invalidation reaches every instance, 5 s without it', () => {
    expect(loadStrataConfig(base).registryCacheTtlMs).toBe(5000);
    expect(loadStrataConfig({ ...base, REDIS_URL: 'redis://r:6379' }).registryCacheTtlMs).toBe(600_000);
    expect(loadStrataConfig({ ...base, REDIS_URL: 'redis://r:6379', REGISTRY_CACHE_TTL_MS: '1000' }).registryCacheTtlMs).toBe(1000);
  });

  it('keeps refresh tokens 30 days and takes AUTH_INVITATION_URL only with {token} in an http(s) URL', () => {
    expect(loadStrataConfig(base)).toMatchObject({ refreshTtlSeconds: 30 * 86_400, invitationUrl: expect.stringContaining('{token}') });
    const perTenant = 'https://{tenant}.app.example.com/join?invite={token}';
    expect(loadStrataConfig({ ...base, AUTH_INVITATION_URL: perTenant }).invitationUrl).toBe(perTenant);
    expect(() => loadStrataConfig({ ...base, AUTH_INVITATION_URL: 'https://app.example.com/join' })).toThrow(/AUTH_INVITATION_URL/);
    expect(() => loadStrataConfig({ ...base, AUTH_INVITATION_URL: 'javascript:alert({token})' })).toThrow(/AUTH_INVITATION_URL/);
    expect(() => loadStrataConfig({ ...base, AUTH_REFRESH_TTL_SECONDS: '10' })).toThrow(/AUTH_REFRESH_TTL_SECONDS/);
  });

  it('reads DATABASE_POOLED_URL as the pooler in front of DATABASE_URL, refusing another database or something that is no URL', () => {
    expect(loadStrataConfig(base).databasePooledUrl).toBeUndefined();
    expect(loadStrataConfig({ ...base, DATABASE_POOLED_URL: 'postgres://pgbouncer:6432/db' }).databasePooledUrl).toBe('postgres://pgbouncer:6432/db');
    expect(loadStrataConfig({ ...base, DATABASE_POOLED_URL: 'postgres://pgbouncer:6432' }).databasePooledUrl).toBe('postgres://pgbouncer:6432');
    expect(() => loadStrataConfig({ ...base, DATABASE_POOLED_URL: 'postgres://pgbouncer:6432/other' })).toThrow(/DATABASE_POOLED_URL must reach the same database/);
    expect(() => loadStrataConfig({ ...base, DATABASE_POOLED_URL: 'pgbouncer:6432' })).toThrow(/DATABASE_POOLED_URL/);
  });

  it('needs DATABASE_URL', () => {
    expect(() => loadStrataConfig({ AUTH_JWT_SECRET: base.AUTH_JWT_SECRET })).toThrow(/DATABASE_URL/);
  });
});
