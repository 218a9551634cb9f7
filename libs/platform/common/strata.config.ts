export const STRATA_CONFIG = Symbol('STRATA_CONFIG');

export interface StrataConfig {
  port: number;
  /** Owner connection to the control-plane database; migrations and provisioning use it. */
  databaseUrl: string;
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
  baseDomain: string | undefined;
  redisUrl: string | undefined;
  registryCacheTtlMs: number;
  dataPoolMax: number;
  /** Longest a unit of work waits for a data connection before it answers 503 tenant_unavailable. */
  dataAcquireTimeoutMs: number;
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

/** Reads and validates every setting once, at startup: a bad value stops the process with its name. */
export function loadStrataConfig(env: NodeJS.ProcessEnv = process.env): StrataConfig {
  const databaseUrl = opt(env, 'DATABASE_URL');
  if (!databaseUrl) throw new Error('config: DATABASE_URL is required (npm start provides an embedded default)');
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
  return {
    port: int(env, 'PORT', 3000, 0),
    databaseUrl,
    appDbUser,
    appDbPassword: opt(env, 'DB_APP_PASSWORD'),
    controlDbUser: opt(env, 'DB_CONTROL_USER') ?? `${appDbUser}_control`,
    controlDbPassword: opt(env, 'DB_CONTROL_PASSWORD') ?? opt(env, 'DB_APP_PASSWORD'),
    jwtSecret,
    jwksUrl: opt(env, 'AUTH_JWKS_URL'),
    jwtIssuer: opt(env, 'AUTH_JWT_ISSUER'),
    tokenTtlSeconds: int(env, 'AUTH_TOKEN_TTL_SECONDS', 3600, 60),
    tokenMaxAgeSeconds: int(env, 'AUTH_TOKEN_MAX_AGE_SECONDS', 86_400, 60),
    baseDomain: opt(env, 'BASE_DOMAIN')?.toLowerCase(),
    redisUrl: opt(env, 'REDIS_URL'),
    registryCacheTtlMs: int(env, 'REGISTRY_CACHE_TTL_MS', 5000, 0),
    dataPoolMax: int(env, 'DATA_POOL_MAX', 10, 1),
    dataAcquireTimeoutMs: int(env, 'DATA_ACQUIRE_TIMEOUT_MS', 5000, 1),
    bridgeConnMaxUses: int(env, 'BRIDGE_CONN_MAX_USES', 5000, 0),
    bridgeConnMaxLifetimeSeconds: int(env, 'BRIDGE_CONN_MAX_LIFETIME_SECONDS', 300, 0),
    tenantSetupPrepared: bool(env, 'TENANT_SETUP_PREPARED', true),
    siloPoolMax,
    siloMaxConnections,
    siloIdleMs: int(env, 'SILO_IDLE_MS', 60_000, 100),
    siloAcquireTimeoutMs: int(env, 'SILO_ACQUIRE_TIMEOUT_MS', 5000, 1),
    placementFence: bool(env, 'PLACEMENT_FENCE', true),
    movesExecutor: bool(env, 'MOVES_EXECUTOR', true),
    moveLeaseMs: int(env, 'MOVE_LEASE_MS', 15_000, 1000),
    moveSourceRetentionMs: int(env, 'MOVE_SOURCE_RETENTION_SECONDS', 86_400, 0) * 1000,
    moveCutoverLockTimeoutMs: int(env, 'MOVE_CUTOVER_LOCK_TIMEOUT_MS', 2000, 10),
    moveCopyRestRatio: num(env, 'MOVE_COPY_REST_RATIO', 0.5, 0),
  };
}
