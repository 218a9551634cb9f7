import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource, QueryFailedError } from 'typeorm';
import { ApiException, badRequest, conflict, notFound } from '#strata/common';
import {
  CONTROL_DATA_SOURCE,
  MembershipEntity,
  PoolEntity,
  TenantEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantRegistry,
  UserEntity,
  type TenantChangePublisher,
  type TenantStatus,
} from '#strata/control-plane';
import { hashPassword } from '#strata/auth';
import { TENANT_SCHEMA_VERSION, TierDrivers } from '#strata/tenancy/platform';
import { TenantProvisioner } from './tenant-provisioner.service';
import type { AddTenantUserDto, CreateTenantDto } from './admin.dto';

export interface TenantView {
  id: string;
  slug: string;
  name: string;
  tier: TenantEntity['tier'];
  status: TenantStatus;
  poolId: string;
  plan: string;
  region: string;
  createdAt: Date;
  updatedAt: Date;
}

const view = (t: TenantEntity): TenantView => ({
  id: t.id,
  slug: t.slug,
  name: t.name,
  tier: t.tier,
  status: t.status,
  poolId: t.poolId,
  plan: t.plan,
  region: t.region,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

const isUniqueViolation = (err: unknown) =>
  err instanceof QueryFailedError && (err as QueryFailedError & { driverError?: { code?: string } }).driverError?.code === '23505';

@Injectable()
export class TenantAdminService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly provisioner: TenantProvisioner,
    private readonly registry: TenantRegistry,
    private readonly drivers: TierDrivers,
    @Inject(TENANT_SCHEMA_VERSION) private readonly schemaVersion: string,
    // Absent without Redis: then only this instance's registry learns of a change (others wait a TTL).
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
  ) {}

  /**
   * Onboarding: record (provisioning) → physical home + migrations → active. A failure removes
   * what was made and the record, so no half-onboarded tenant is left behind.
   */
  async create(dto: CreateTenantDto): Promise<TenantView> {
    const pools = this.db.getRepository(PoolEntity);
    const pool = dto.poolId
      ? await pools.findOneBy({ id: dto.poolId })
      : await pools.findOneBy({ kind: dto.tier, isDefault: true });
    if (!pool || pool.kind !== dto.tier) throw badRequest('invalid_pool', `no ${dto.tier} pool ${dto.poolId ?? '(default)'} is registered`);

    const tenants = this.db.getRepository(TenantEntity);
    let tenant: TenantEntity;
    try {
      tenant = await tenants.save(
        tenants.create({
          slug: dto.slug,
          name: dto.name,
          tier: dto.tier,
          poolId: pool.id,
          status: 'provisioning',
          plan: dto.plan ?? 'standard',
          region: 'local',
          settings: {},
          ...this.drivers.of(dto.tier).placementFor(dto.slug),
        }),
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('tenant_slug_taken', `slug ${dto.slug} is taken`);
      throw err;
    }

    try {
      await this.provisioner.provision(tenant, pool);
    } catch (err) {
      await this.provisioner.deprovision(tenant, pool);
      await tenants.delete({ id: tenant.id });
      const exists = (err as { code?: string }).code === '42P04' || (err as { code?: string }).code === '42P06';
      if (exists) throw conflict('tenant_home_exists', 'a schema or database for this slug already exists');
      throw new ApiException(503, 'provisioning_failed', `provisioning failed: ${(err as Error).message}`);
    }
    tenant.status = 'active';
    // Provisioned at the version this release ships; pool tenants follow their pool's shared schema.
    const version = this.schemaVersion;
    await tenants.update({ id: tenant.id }, { status: 'active', schemaVersion: version });
    if (tenant.tier === 'pool' && pool.schemaVersion < version) await pools.update({ id: pool.id }, { schemaVersion: version });
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
    return view((await tenants.findOneBy({ id: tenant.id }))!);
  }

  async get(id: string): Promise<TenantView> {
    return view(await this.require(id));
  }

  async list(): Promise<TenantView[]> {
    return (await this.db.getRepository(TenantEntity).find({ order: { createdAt: 'ASC' } })).map(view);
  }

  async setStatus(id: string, status: 'active' | 'suspended'): Promise<TenantView> {
    const tenant = await this.require(id);
    if (tenant.status !== 'active' && tenant.status !== 'suspended') {
      throw conflict('tenant_state_conflict', `a ${tenant.status} tenant cannot become ${status}`);
    }
    await this.db.getRepository(TenantEntity).update({ id }, { status });
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
    return this.get(id);
  }

  /** One person may belong to several tenants: an existing user (by email) gets a new membership. */
  async addUser(tenantId: string, dto: AddTenantUserDto): Promise<{ id: string; email: string; role: string; tenantId: string }> {
    await this.require(tenantId);
    const email = dto.email.toLowerCase();
    const passwordHash = await hashPassword(dto.password);
    const added = await this.db.transaction(async (em) => {
      // Insert-or-get in one statement, safe against a concurrent insert of the same email.
      const rows: Array<{ id: string }> = await em.query(
        `INSERT INTO control.users (email, password_hash) VALUES ($1, $2)
         ON CONFLICT (email) DO UPDATE SET updated_at = control.users.updated_at
         RETURNING id`,
        [email, passwordHash],
      );
      const userId = rows[0].id;
      const inserted: unknown[] = await em.query(
        `INSERT INTO control.memberships (user_id, tenant_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, tenant_id) DO NOTHING RETURNING user_id`,
        [userId, tenantId, dto.role],
      );
      if (inserted.length === 0) throw conflict('membership_exists', 'this user already belongs to the tenant');
      return { id: userId, email, role: dto.role, tenantId };
    });
    // After COMMIT: invalidating earlier lets a concurrent read re-cache "no membership" for a TTL.
    this.registry.invalidateMembership(added.id, tenantId);
    await this.changes?.publishMembershipChanged(added.id, tenantId);
    return added;
  }

  private async require(id: string): Promise<TenantEntity> {
    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id });
    if (!tenant || tenant.status === 'deleted') throw notFound('tenant_not_found', 'tenant not found');
    return tenant;
  }
}

