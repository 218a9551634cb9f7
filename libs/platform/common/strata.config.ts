import { parseCorsOrigins } from './cors.policy';
export const STRATA_CONFIG = Symbol('STRATA_CONFIG');

export interface StrataConfig {
  port: number;
  /** Address the API listens on (HOST); unset: 127.0.0.1 for the embedded demo, 0.0.0.0 otherwise (apps/api main.ts). */
  host?: string;
  /** Owner connection to the control-plane database; migrations and provisioning use it. */
  databaseUrl: string;
  /**
   * A connection pooler in front of DATABASE_URL's server (host, port, same database): the default
   * pools' units of work connect through it, session work stays on DATABASE_URL's address.
   */
  databasePooledUrl: string | undefined;
  /** Data-plane role: tenant tables only, never the control plane. */
  appDbUser: string;
  appDbPassword: string | undefined;
  /** Control-plane role: the `control` schema only, never a tenant table. */
  controlDbUser: string;
  controlDbPassword: string | undefined;
  jwtSecret: string;
  jwksUrl: string | undefined;
  jwtIssuer: string | undefined;
  tokenTtlSeconds: number;
  /** Oldest a token (by its iat) may be, whatever its exp says. */
  tokenMaxAgeSeconds: number;
  /** Lifetime of a refresh token; each refresh issues a new one with a fresh lifetime (libs/platform/auth). */
  refreshTtlSeconds: number;
  /** The invitation link mailed to invitees: a URL with `{token}` (and optionally `{tenant}`, the slug) in it. */
  invitationUrl: string;
  baseDomain: string | undefined;
  /** Browser origins allowed to call the API (CORS); empty: same-origin only. */
  corsOrigins: string[];
  corsCredentials: boolean;
  redisUrl: string | undefined;
  /**
   * Longest a Redis command on a request path waits for its answer (enqueue, cache, queue depth,
   * readiness). While a connection is known to be down, commands fail at once instead.
   */
  redisCommandTimeoutMs: number;
  registryCacheTtlMs: number;
  dataPoolMax: number;
  /** Longest a unit of work waits for a data connection before it answers 503 tenant_unavailable. */
  dataAcquireTimeoutMs: number;
  /** Per unit of work, set transaction-locally: longest statement and longest lock wait (0 = the role's default). */
  dataStatementTimeoutMs: number;
  dataLockTimeoutMs: number;
  /** Per write unit, set transaction-locally: longest it may sit idle inside its open transaction (0 = the role's default). */
  dataIdleInTransactionTimeoutMs: number;
  /**
   * Requests of one tenant in flight at once on one instance, for plans that set none
   * (libs/platform/capacity); 0 turns the budget off. Keep it below DATA_POOL_MAX, so one tenant
   * cannot hold every connection of a shared pool.
   */
  tenantMaxConcurrentRequests: number;
  /** Requests of one tenant waiting for a slot (FIFO) beyond which the next is refused at once with 429. */
  tenantQueueMax: number;
  /** Longest a request waits for its tenant's slot before it answers 429 concurrency_limited. */
  tenantQueueWaitMs: number;
  /** Jobs of one tenant running at once per queue on one worker, for plans that set none; 0: no cap. */
  jobsTenantConcurrency: number;
  /**
   * Pre-migrated spare schemas kept per bridge database (BRIDGE_SPARE_SCHEMAS, 0: none): a bridge
   * onboarding renames one instead of running every tenant migration's DDL (~150 ms). Refilled in the
   * background after each onboarding, so an instance that never onboards a bridge tenant makes none.
   */
  bridgeSpareSchemas: number;
  bridgeConnMaxUses: number;
  bridgeConnMaxLifetimeSeconds: number;
  /**
   * Each data connection prepares the read units' tenant setup once (a named statement) instead of
   * parsing it with every statement. Off behind PgBouncer < 1.21 in transaction mode.
   */
  tenantSetupPrepared: boolean;
  siloPoolMax: number;
  siloMaxConnections: number;
  siloIdleMs: number;
  siloAcquireTimeoutMs: number;
  /**
   * Hysteresis of silo DataSource residency: past SILO_DATASOURCES_MAX, a DataSource used within
   * this window is never evicted (the cache runs over its bound until one is older), so eviction
   * cannot cascade.
   */
  siloResidencyMs: number;
  /**
   * Silo DataSources kept per instance (LRU). A kept DataSource costs memory, not connections:
   * connections are what SILO_MAX_CONNECTIONS counts, and a kept tenant without one reconnects.
   */
  siloDataSourcesMax: number;
  /**
   * Hysteresis of silo connections: a tenant's idle connection used within this window is not
   * closed to make room for another tenant (the other waits), so the same tenants' connections
   * do not flap.
   */
  siloConnectionHoldMs: number;
  /** A silo tenant's connections beyond its first are closed after idling this long (its first stays while resident). */
  siloSpareIdleMs: number;
  /**
   * Most data-plane connections (pool, bridge and silo together) one instance opens to one database
   * server (host:port); a unit that needs a new connection beyond it waits DB_SERVER_ACQUIRE_TIMEOUT_MS,
   * then answers 503 tenant_capacity.
   */
  dbServerMaxConnections: number;
  dbServerAcquireTimeoutMs: number;
  /** Distinct tenant_id label values on per-tenant metrics: the busiest tenants keep theirs, the rest count as `other`. */
  metricsTenantLabelsMax: number;
  /**
   * Every unit of work proves, inside its own transaction, that the tenant's home it landed on is
   * still current (libs/platform/tenancy placement fence). `false` exists only so `npm run bench` can
   * measure the fence's cost side by side; never turn it off where tenants can move.
   */
  placementFence: boolean;
  /** This process claims and runs tenant moves (libs/platform/moves); off for processes that must not. */
  movesExecutor: boolean;
  /** How long a move's claim lasts without a heartbeat before another process may take it over. */
  moveLeaseMs: number;
  /** How long a moved tenant's old home is kept (read-only, unreachable) before it is dropped. */
  moveSourceRetentionMs: number;
  /** Longest the cutover waits for the tenant's in-flight writes before it backs off and retries. */
  moveCutoverLockTimeoutMs: number;
  /** After each copy batch and checksum a move rests this many times as long as it took (0: flat out). */
  moveCopyRestRatio: number;
  /** This process claims and runs tenant onboardings (libs/platform/onboarding); off for processes that must not. */
  onboardingExecutor: boolean;
  /** How long an onboarding's claim lasts without a heartbeat before another process may take it over. */
  onboardingLeaseMs: number;
  /** Attempts of one onboarding step before the tenant ends `failed`. */
  onboardingMaxAttempts: number;
  /** Back-off before a failed step's next attempt, doubled each time. */
  onboardingRetryBaseMs: number;
  /** Self-service `POST /signup` (public). Off unless set; the embedded demo turns it on. */
  signupEnabled: boolean;
  /** Signups one client address may attempt per window (`SIGNUP_RATE_WINDOW_SECONDS`). */
  signupRateLimit: number;
  signupRateWindowSeconds: number;
  /** How long a signup waits for its tenant to become active before answering 202 with where to poll. */
  signupWaitMs: number;
  /** How long an Idempotency-Key answers with its first request's response; then it is free again and swept. */
  idempotencyKeyRetentionMs: number;
  /** Serve `GET /openapi.json` and `GET /docs` (libs/platform/api-docs). */
  openapiEnabled: boolean;
  /** Rate limits at the HTTP edge (libs/platform/rate-limits): per tenant by plan, per user, and on anonymous routes. */
  rateLimitsEnabled: boolean;
  /** A bucket holds this many seconds of its rate: the burst a tenant or user may spend at once. */
  rateLimitBurstSeconds: number;
  /** Requests per second one user may make in one tenant (bounded by the tenant's plan as well). */
  rateLimitUserPerSecond: number;
  /** How often an instance pushes what it counted to Redis and reads every instance's total back. */
  rateLimitSyncMs: number;
  /** Local buckets kept per instance (LRU, tenants and users each): bounds memory whatever the fleet's size. */
  rateLimitMaxKeys: number;
  /** Login attempts (any account) one client address may make per LOGIN_RATE_WINDOW_SECONDS. */
  loginRateLimitPerAddress: number;
  loginRateWindowSeconds: number;
  /** Failed logins to one account from one address before that address is locked out of that account. */
  loginLockoutFailures: number;
  /** How long such a lockout lasts, and the window its failures are counted in. */
  loginLockoutSeconds: number;
  /** Failed logins to one account from all addresses within LOGIN_LOCKOUT_SECONDS before it refuses addresses it has no success from. */
  loginAccountFailures: number;
  /** Requests one client address may make per minute to the other anonymous auth routes (refresh, logout, tenants, accept invitation). */
  anonymousRateLimitPerMinute: number;
  /** Password hashes (scrypt) computed at once per process; the rest wait in a queue of HASH_QUEUE_MAX, beyond it 429. */
  hashConcurrency: number;
  hashQueueMax: number;
}

function int(env: NodeJS.ProcessEnv, key: string, fallback: number, min = 0): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`config: ${key} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function num(env: NodeJS.ProcessEnv, key: string, fallback: number, min: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`config: ${key} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

function bool(env: NodeJS.ProcessEnv, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new Error(`config: ${key} must be true or false, got ${JSON.stringify(raw)}`);
}

function opt(env: NodeJS.ProcessEnv, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v === '' ? undefined : v;
}

/** Where the demo's frontend (CORS origin http://localhost:5173) would take an invitee. */
export const DEFAULT_INVITATION_URL = 'http://localhost:5173/accept-invitation#token={token}';

function invitationUrl(raw: string): string {
  // Checked with a sample token: the placeholders are not valid in every part of a URL.
  const sample = raw.replaceAll('{token}', 'token').replaceAll('{tenant}', 'tenant');
  if (!raw.includes('{token}') || !URL.canParse(sample) || !/^https?:$/.test(new URL(sample).protocol)) {
    throw new Error(`config: AUTH_INVITATION_URL must be an http(s) URL containing {token}, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** Only host, port and database are read from DATABASE_POOLED_URL; the database must be DATABASE_URL's (a pool names one). */
function checkPooledUrl(databaseUrl: string, pooledUrl: string): void {
  let pooled: URL;
  try {
    pooled = new URL(pooledUrl);
  } catch {
    throw new Error('config: DATABASE_POOLED_URL must be a postgres:// URL (host and port of the pooler)');
  }
  if (!pooled.hostname) throw new Error('config: DATABASE_POOLED_URL must name a host');
  const database = (u: string) => decodeURIComponent(new URL(u).pathname.replace(/^\//, ''));
  const want = database(databaseUrl);
  const got = database(pooledUrl);
  if (got && got !== want) {
    throw new Error(`config: DATABASE_POOLED_URL must reach the same database as DATABASE_URL (${JSON.stringify(want)}), got ${JSON.stringify(got)}`);
  }
}

/** Reads and validates every setting once, at startup: a bad value stops the process with its name. */
export function loadStrataConfig(env: NodeJS.ProcessEnv = process.env): StrataConfig {
  const databaseUrl = opt(env, 'DATABASE_URL');
  if (!databaseUrl) throw new Error('config: DATABASE_URL is required (npm start provides an embedded default)');
  const databasePooledUrl = opt(env, 'DATABASE_POOLED_URL');
  if (databasePooledUrl) checkPooledUrl(databaseUrl, databasePooledUrl);
  const jwtSecret = opt(env, 'AUTH_JWT_SECRET');
  if (!jwtSecret || jwtSecret.length < 32) {
    throw new Error('config: AUTH_JWT_SECRET must be set to at least 32 characters');
  }
  const siloPoolMax = int(env, 'SILO_POOL_MAX', 10, 1);
  const siloMaxConnections = int(env, 'SILO_MAX_CONNECTIONS', 40, 1);
  if (siloMaxConnections < siloPoolMax) {
    throw new Error('config: SILO_MAX_CONNECTIONS must be >= SILO_POOL_MAX');
  }
  const appDbUser = opt(env, 'DB_APP_USER') ?? 'strata_app';
  const dataPoolMax = int(env, 'DATA_POOL_MAX', 10, 1);
  const dbServerMaxConnections = int(env, 'DB_SERVER_MAX_CONNECTIONS', 60, 1);
  if (dbServerMaxConnections < Math.max(dataPoolMax, siloPoolMax)) {
    throw new Error('config: DB_SERVER_MAX_CONNECTIONS must be >= DATA_POOL_MAX and >= SILO_POOL_MAX');
  }
  const redisUrl = opt(env, 'REDIS_URL');
  return {
    port: int(env, 'PORT', 3000, 0),
    host: opt(env, 'HOST'),
    databaseUrl,
    databasePooledUrl,
    appDbUser,
    appDbPassword: opt(env, 'DB_APP_PASSWORD'),
    controlDbUser: opt(env, 'DB_CONTROL_USER') ?? `${appDbUser}_control`,
    controlDbPassword: opt(env, 'DB_CONTROL_PASSWORD') ?? opt(env, 'DB_APP_PASSWORD'),
    jwtSecret,
    jwksUrl: opt(env, 'AUTH_JWKS_URL'),
    jwtIssuer: opt(env, 'AUTH_JWT_ISSUER'),
    tokenTtlSeconds: int(env, 'AUTH_TOKEN_TTL_SECONDS', 3600, 60),
    tokenMaxAgeSeconds: int(env, 'AUTH_TOKEN_MAX_AGE_SECONDS', 86_400, 60),
    refreshTtlSeconds: int(env, 'AUTH_REFRESH_TTL_SECONDS', 30 * 86_400, 60),
    invitationUrl: invitationUrl(opt(env, 'AUTH_INVITATION_URL') ?? DEFAULT_INVITATION_URL),
    baseDomain: opt(env, 'BASE_DOMAIN')?.toLowerCase(),
    corsOrigins: parseCorsOrigins(opt(env, 'CORS_ORIGINS'), bool(env, 'CORS_CREDENTIALS', false)),
    corsCredentials: bool(env, 'CORS_CREDENTIALS', false),
    redisUrl,
    redisCommandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 500, 1),
    // With Redis, changes reach every instance by pub/sub within a second, and a message can only
    // be missed across a disconnect, after which the whole cache is dropped: the TTL is a backstop,
    // 10 minutes (60 s left a fleet of 10,000 tenants with most requests missing: bench:fleet).
    // Fleet migrations publish nothing, so a cached "behind" is re-read before it refuses
    // (PlacementResolver). Without Redis the TTL is the only way another instance learns: 5 s.
    registryCacheTtlMs: int(env, 'REGISTRY_CACHE_TTL_MS', redisUrl ? 600_000 : 5000, 0),
    dataPoolMax,
    dataAcquireTimeoutMs: int(env, 'DATA_ACQUIRE_TIMEOUT_MS', 5000, 1),
    dataStatementTimeoutMs: int(env, 'DATA_STATEMENT_TIMEOUT_MS', 15_000, 0),
    dataLockTimeoutMs: int(env, 'DATA_LOCK_TIMEOUT_MS', 3000, 0),
    dataIdleInTransactionTimeoutMs: int(env, 'DATA_IDLE_IN_TRANSACTION_TIMEOUT_MS', 10_000, 0),
    tenantMaxConcurrentRequests: int(env, 'TENANT_MAX_CONCURRENT_REQUESTS', 8, 0),
    tenantQueueMax: int(env, 'TENANT_QUEUE_MAX', 32, 0),
    tenantQueueWaitMs: int(env, 'TENANT_QUEUE_WAIT_MS', 2000, 0),
    jobsTenantConcurrency: int(env, 'JOBS_TENANT_CONCURRENCY', 4, 0),
    bridgeSpareSchemas: int(env, 'BRIDGE_SPARE_SCHEMAS', 2, 0),
    bridgeConnMaxUses: int(env, 'BRIDGE_CONN_MAX_USES', 5000, 0),
    bridgeConnMaxLifetimeSeconds: int(env, 'BRIDGE_CONN_MAX_LIFETIME_SECONDS', 300, 0),
    tenantSetupPrepared: bool(env, 'TENANT_SETUP_PREPARED', true),
    siloPoolMax,
    siloMaxConnections,
    siloIdleMs: int(env, 'SILO_IDLE_MS', 60_000, 100),
    siloAcquireTimeoutMs: int(env, 'SILO_ACQUIRE_TIMEOUT_MS', 5000, 1),
    siloResidencyMs: int(env, 'SILO_RESIDENCY_MS', 2000, 0),
    siloSpareIdleMs: int(env, 'SILO_SPARE_IDLE_MS', 1000, 100),
    siloDataSourcesMax: int(env, 'SILO_DATASOURCES_MAX', 1000, 1),
    siloConnectionHoldMs: int(env, 'SILO_CONNECTION_HOLD_MS', 20, 0),
    dbServerMaxConnections,
    dbServerAcquireTimeoutMs: int(env, 'DB_SERVER_ACQUIRE_TIMEOUT_MS', 2000, 1),
    metricsTenantLabelsMax: int(env, 'METRICS_TENANT_LABELS_MAX', 100, 1),
    placementFence: bool(env, 'PLACEMENT_FENCE', true),
    movesExecutor: bool(env, 'MOVES_EXECUTOR', true),
    moveLeaseMs: int(env, 'MOVE_LEASE_MS', 15_000, 1000),
    moveSourceRetentionMs: int(env, 'MOVE_SOURCE_RETENTION_SECONDS', 86_400, 0) * 1000,
    moveCutoverLockTimeoutMs: int(env, 'MOVE_CUTOVER_LOCK_TIMEOUT_MS', 2000, 10),
    moveCopyRestRatio: num(env, 'MOVE_COPY_REST_RATIO', 0.5, 0),
    onboardingExecutor: bool(env, 'ONBOARDING_EXECUTOR', true),
    onboardingLeaseMs: int(env, 'ONBOARDING_LEASE_MS', 15_000, 1000),
    onboardingMaxAttempts: int(env, 'ONBOARDING_MAX_ATTEMPTS', 3, 1),
    onboardingRetryBaseMs: int(env, 'ONBOARDING_RETRY_BASE_MS', 250, 0),
    signupEnabled: bool(env, 'SIGNUP_ENABLED', false),
    signupRateLimit: int(env, 'SIGNUP_RATE_LIMIT', 5, 1),
    signupRateWindowSeconds: int(env, 'SIGNUP_RATE_WINDOW_SECONDS', 3600, 1),
    signupWaitMs: int(env, 'SIGNUP_WAIT_MS', 3000, 0),
    idempotencyKeyRetentionMs: int(env, 'IDEMPOTENCY_KEY_RETENTION_SECONDS', 86_400, 60) * 1000,
    // On in development and the demo; a production deployment opts in (its API surface is then public).
    openapiEnabled: bool(env, 'OPENAPI_ENABLED', env.NODE_ENV !== 'production'),
    rateLimitsEnabled: bool(env, 'RATE_LIMITS_ENABLED', true),
    rateLimitBurstSeconds: num(env, 'RATE_LIMIT_BURST_SECONDS', 2, 1),
    rateLimitUserPerSecond: num(env, 'RATE_LIMIT_USER_PER_SECOND', 20, 0.01),
    rateLimitSyncMs: int(env, 'RATE_LIMIT_SYNC_MS', 100, 10),
    rateLimitMaxKeys: int(env, 'RATE_LIMIT_MAX_KEYS', 20_000, 100),
    loginRateLimitPerAddress: int(env, 'LOGIN_RATE_LIMIT_PER_ADDRESS', 30, 1),
    loginRateWindowSeconds: int(env, 'LOGIN_RATE_WINDOW_SECONDS', 60, 1),
    loginLockoutFailures: int(env, 'LOGIN_LOCKOUT_FAILURES', 5, 1),
    loginLockoutSeconds: int(env, 'LOGIN_LOCKOUT_SECONDS', 300, 1),
    loginAccountFailures: int(env, 'LOGIN_ACCOUNT_FAILURES', 50, 1),
    anonymousRateLimitPerMinute: int(env, 'ANONYMOUS_RATE_LIMIT_PER_MINUTE', 60, 1),
    hashConcurrency: int(env, 'HASH_CONCURRENCY', 2, 1),
    hashQueueMax: int(env, 'HASH_QUEUE_MAX', 64, 0),
  };
}
