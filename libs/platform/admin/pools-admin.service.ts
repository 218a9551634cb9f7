import { Inject, Injectable, Logger } from '@nestjs/common';
import { Client, escapeIdentifier } from 'pg';
import { DataSource, QueryFailedError } from 'typeorm';
import { ApiException, badRequest, conflict, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, directAddressOf, PoolEntity, type AuditTrail, type Tier } from '#strata/control-plane';
import { ensureAppRole, latestVersion, migrateSchema, SHARED_SCHEMA } from '#strata/migrator';
import { AdminErrorCode } from './admin.errors';
import type { CreatePoolDto, PoolView } from './pools.dto';

export type { PoolView };

/** How long registering waits for the new server to accept a connection. */
const CONNECT_TIMEOUT_MS = 5000;
/** Databases to run CREATE DATABASE from when the pool's database does not exist yet. */
const MAINTENANCE_DATABASES = ['postgres', 'template1'];

type PgError = Error & { code?: string; errors?: unknown[] };
const sqlState = (err: unknown): string | undefined => (err as PgError | undefined)?.code;

/** Why a connection failed, in words (node's AggregateError of a dual-stack connect has no message of its own). */
function reason(err: unknown): string {
  const e = err as PgError;
  if (Array.isArray(e?.errors) && e.errors.length) return e.errors.map(reason).join('; ');
  return e?.message || e?.code || String(err);
}

/** Errors that say the server (or the session) went away or refused us, not that a statement failed. */
function isConnectionError(err: unknown): boolean {
  const code = sqlState(err) ?? '';
  return (
    /^E[A-Z]+$/.test(code) || // ECONNREFUSED, ECONNRESET, ETIMEDOUT, ENOTFOUND, EHOSTUNREACH …
    /^(08|28)/.test(code) || // connection exception, invalid authorization
    ['3D000', '53300', '57P01', '57P02', '57P03'].includes(code) ||
    /timeout|Connection terminated/i.test((err as Error)?.message ?? '')
  );
}

class Unreachable extends Error {}

/**
 * Registers servers (or databases) as homes for tenants of one tier. Before the row exists, the
 * database is prepared as the owner role with DATABASE_URL's credentials — the same ones onboarding
 * uses on every pool's server: created when missing, the app and control roles ensured (roles are
 * per cluster), CONNECT granted, and for pool kind the `shared` schema migrated to this release.
 */
@Injectable()
export class PoolsAdminService {
  private readonly logger = new Logger(PoolsAdminService.name);

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  async list(): Promise<PoolView[]> {
    return this.query();
  }

  async create(dto: CreatePoolDto, operator: string): Promise<PoolView> {
    const pools = this.db.getRepository(PoolEntity);
    // Before touching the server: a taken id must not create databases or roles anywhere.
    if (await pools.existsBy({ id: dto.id })) throw conflict(AdminErrorCode.PoolExists, `pool ${dto.id} is already registered`);

    const schemaVersion = await this.prepare(dto);
    try {
      await this.db.transaction(async (em) => {
        await em.getRepository(PoolEntity).insert({
          id: dto.id,
          kind: dto.kind,
          host: dto.host,
          port: dto.port,
          database: dto.database,
          directHost: dto.directHost ?? null,
          directPort: dto.directPort ?? null,
          maxConnections: dto.maxConnections, // undefined: the column's default
          isDefault: false,
          schemaVersion, // undefined (bridge, silo): '0000'; their tenants carry their own version
        });
        await this.audit.record(
          { action: 'pool.registered', actor: { type: 'operator', id: operator }, details: { poolId: dto.id, kind: dto.kind, host: dto.host, port: dto.port, database: dto.database } },
          em,
        );
      });
    } catch (err) {
      const unique = err instanceof QueryFailedError && sqlState((err as QueryFailedError & { driverError?: unknown }).driverError) === '23505';
      if (unique) throw conflict(AdminErrorCode.PoolExists, `pool ${dto.id} is already registered`);
      throw err;
    }
    // No cache to invalidate: TenantRegistry.findPool caches by id, and this id was never looked up
    // successfully (a cached miss for it expires with REGISTRY_CACHE_TTL_MS).
    return (await this.query(dto.id))[0];
  }

  private async query(id?: string): Promise<PoolView[]> {
    const rows: Array<PoolView> = await this.db.query(
      `SELECT p.id, p.kind, p.host, p.port, p.database,
              coalesce(p.direct_host, p.host) AS "directHost", coalesce(p.direct_port, p.port) AS "directPort",
              p.max_connections AS "maxConnections", p.is_default AS "isDefault",
              (count(t.id) FILTER (WHERE t.status <> 'deleted'))::int AS "tenantCount"
         FROM control.pools p LEFT JOIN control.tenants t ON t.pool_id = p.id
        WHERE $1::text IS NULL OR p.id = $1
        GROUP BY p.id
        ORDER BY p.id COLLATE "C"`,
      [id ?? null],
    );
    return rows;
  }

  /**
   * Makes `dto.database` on the server a home for its kind: everything as the owner at the direct
   * address (session work), then the app role's login at host/port (where its units of work will
   * connect: through the pooler, when there is one). Returns the tenant schema version of its
   * `shared` schema (pool kind). A database it created is dropped again if a later step fails.
   */
  private async prepare(dto: CreatePoolDto): Promise<string | undefined> {
    const direct = directAddressOf(dto);
    const sameAddress = direct.host === dto.host && direct.port === dto.port;
    const where = `${dto.host}:${dto.port}/${dto.database}${sameAddress ? '' : ` (direct ${direct.host}:${direct.port})`}`;
    let created = false;
    try {
      let owner: Client;
      try {
        owner = await this.connect(dto, dto.database);
      } catch (err) {
        if (sqlState(err) !== '3D000') throw err; // anything but "database does not exist"
        created = await this.createDatabase(dto);
        owner = await this.connect(dto, dto.database);
      }
      let version: string | undefined;
      try {
        version = await this.prepareDatabase(owner, dto);
      } finally {
        await owner.end().catch(() => undefined);
      }
      await this.checkAppRole(dto);
      return version;
    } catch (err) {
      if (created) await this.dropDatabase(dto);
      if (err instanceof ApiException) throw err;
      if (err instanceof Unreachable || isConnectionError(err)) {
        throw badRequest(AdminErrorCode.PoolUnreachable, `cannot use ${where}: ${reason(err)}`);
      }
      this.logger.error(`preparing ${where} failed: ${reason(err)}`);
      throw new ApiException(503, AdminErrorCode.PoolSetupFailed, `preparing ${where} failed: ${reason(err)}`);
    }
  }

  private async prepareDatabase(owner: Client, dto: CreatePoolDto): Promise<string | undefined> {
    const { appDbUser, appDbPassword, controlDbUser, controlDbPassword } = this.config;
    // Every unit of work connects as the app role; readiness' RLS guardrail reads the catalogs as the control role.
    await ensureAppRole(owner, appDbUser, appDbPassword);
    if (controlDbUser !== appDbUser) await ensureAppRole(owner, controlDbUser, controlDbPassword ?? appDbPassword);
    const grantees = [...new Set([appDbUser, controlDbUser])].map(escapeIdentifier).join(', ');
    await owner.query(`GRANT CONNECT ON DATABASE ${escapeIdentifier(dto.database)} TO ${grantees}`);
    if (dto.kind !== 'pool') return undefined; // bridge schemas and silo databases are made per tenant at onboarding
    await migrateSchema(owner, { schema: SHARED_SCHEMA, set: 'tenant', grantTo: appDbUser });
    return latestVersion('tenant');
  }

  /** CREATE DATABASE from a maintenance database; false when someone else created it meanwhile. */
  private async createDatabase(dto: CreatePoolDto): Promise<boolean> {
    const admin = await this.connectMaintenance(dto);
    try {
      await admin.query(`CREATE DATABASE ${escapeIdentifier(dto.database)}`);
      return true;
    } catch (err) {
      if (sqlState(err) === '42P04') return false; // duplicate_database: a concurrent registration made it
      throw err;
    } finally {
      await admin.end().catch(() => undefined);
    }
  }

  private async dropDatabase(dto: CreatePoolDto): Promise<void> {
    try {
      const admin = await this.connectMaintenance(dto);
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(dto.database)} WITH (FORCE)`);
      } finally {
        await admin.end().catch(() => undefined);
      }
    } catch (err) {
      const direct = directAddressOf(dto);
      this.logger.error(`could not drop database ${dto.database} on ${direct.host}:${direct.port} after a failed registration: ${reason(err)}`);
    }
  }

  private async connectMaintenance(dto: CreatePoolDto): Promise<Client> {
    let last: unknown;
    for (const database of MAINTENANCE_DATABASES) {
      try {
        return await this.connect(dto, database);
      } catch (err) {
        last = err;
        if (sqlState(err) !== '3D000') break;
      }
    }
    throw last;
  }

  /** The app role must be able to log in there: every unit of work (and readiness) connects as it. */
  private async checkAppRole(dto: CreatePoolDto): Promise<void> {
    const { appDbUser, appDbPassword } = this.config;
    let app: Client;
    try {
      app = await this.connect(dto, dto.database, { user: appDbUser, password: appDbPassword });
    } catch (err) {
      throw new Unreachable(`the app role ${appDbUser} cannot log in: ${reason(err)}`);
    }
    try {
      if (dto.kind === 'pool') await app.query(`SELECT 1 FROM ${escapeIdentifier(SHARED_SCHEMA)}.strata_migrations LIMIT 1`);
      else await app.query('SELECT 1');
    } finally {
      await app.end().catch(() => undefined);
    }
  }

  /**
   * A session as the owner (DATABASE_URL's user and password) at the pool's direct address, or as
   * `as` at host/port — where that role's units of work connect.
   */
  private async connect(dto: CreatePoolDto, database: string, as?: { user: string; password: string | undefined }): Promise<Client> {
    const url = new URL(this.config.databaseUrl);
    const address = as ? { host: dto.host, port: dto.port } : directAddressOf(dto);
    const client = new Client({
      host: address.host,
      port: address.port,
      database,
      user: as ? as.user : decodeURIComponent(url.username) || undefined,
      password: as ? as.password : url.password ? decodeURIComponent(url.password) : undefined,
      application_name: 'strata-pool-registration',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    // A server that drops the session must fail the pending query, not crash the process.
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }
}
