import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ApiException, badRequest, conflict, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import {
  AUDIT_LOG,
  CONTROL_DATA_SOURCE,
  MembershipEntity,
  PoolEntity,
  TenantEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantRegistry,
  UserEntity,
  type AuditActor,
  type AuditTrail,
  type TenantChangePublisher,
  type TenantStatus,
} from '#strata/control-plane';
import { hashPassword } from '#strata/auth';
import { TenantRestorer } from '#strata/exports';
import { TenantQueuedJobs } from '#strata/jobs';
import { OnboardingService, RESTORE_ONBOARDING_STEPS, type OnboardingRequest } from '#strata/onboarding';
import type { AddTenantUserDto, CreateTenantDto, TenantView } from './admin.dto';

export type { TenantView };

const view = (t: TenantEntity): TenantView => ({
  id: t.id,
  slug: t.slug,
  name: t.name,
  tier: t.tier,
  status: t.status,
  poolId: t.poolId,
  plan: t.plan,
  region: t.region,
  maintenanceSince: t.maintenanceSince ?? null,
  maintenanceReason: t.maintenanceReason ?? null,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

/** Who acts when the service is called without an operator (the demo seed, tests): the system. */
const BY_SYSTEM: AuditActor = { type: 'system' };

/** Longest `POST /admin/tenants` waits for `active` before it answers 202 instead (a held lease, long back-offs). */
const SYNC_ONBOARDING_WAIT_MS = 30_000;

@Injectable()
export class TenantAdminService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly registry: TenantRegistry,
    private readonly onboarding: OnboardingService,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    // Absent without Redis: then only this instance's registry learns of a change (others wait a TTL).
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
    // Absent in apps without JobsModule: parked jobs then resume at their next look (the park delay).
    @Optional() private readonly jobs?: TenantQueuedJobs,
    // From ExportsModule (global) in the API; absent in slimmer apps, where restoreFrom is refused.
    @Optional() private readonly restorer?: TenantRestorer,
  ) {}

  /**
   * Onboarding through the pipeline (libs/platform/onboarding): the record (`provisioning`) and its
   * steps, which then run here while the call waits until the tenant is `active` — or failed: 409
   * tenant_home_exists when its schema or database was already there (left untouched), 503
   * provisioning_failed after the retries. Still `provisioning` after 30 s (another process holds
   * it): answered as it stands, the executors finish it.
   */
  async create(dto: CreateTenantDto, actor: AuditActor = BY_SYSTEM): Promise<TenantView> {
    const tenant = await this.onboarding.start(await this.onboardingOf(dto, actor));
    const state = await this.onboarding.settle(tenant.id, SYNC_ONBOARDING_WAIT_MS);
    if (state.status === 'failed') {
      if (state.homeExists) throw conflict('tenant_home_exists', `a schema or database for slug ${dto.slug} already exists; it was left untouched (tenant ${tenant.id} is failed)`);
      throw new ApiException(503, 'provisioning_failed', `provisioning failed (tenant ${tenant.id} is failed): ${state.error ?? 'unknown error'}`);
    }
    if (state.status === 'provisioning') this.onboarding.kick();
    return this.get(tenant.id);
  }

  /** `?async=true`: the record and its steps, answered at once (`provisioning`); an executor onboards it. */
  async createAsync(dto: CreateTenantDto, actor: AuditActor = BY_SYSTEM): Promise<TenantView> {
    const tenant = await this.onboarding.start(await this.onboardingOf(dto, actor));
    this.onboarding.kick();
    return this.get(tenant.id);
  }

  /**
   * The pipeline's request. `restoreFrom` adds the `restore` step (libs/platform/exports) after the
   * migrations, with its export in the params; the export is verified first (404 export_not_found,
   * 409 export_not_ready / export_schema_mismatch, 422 export_archive_invalid), before anything exists.
   */
  private async onboardingOf(dto: CreateTenantDto, actor: AuditActor): Promise<OnboardingRequest> {
    const { restoreFrom, ...rest } = dto;
    if (!restoreFrom) return { ...rest, actor };
    if (!this.restorer) throw new ApiException(503, 'provisioning_failed', 'restoring an export needs the exports module');
    await this.restorer.verify(restoreFrom);
    return { ...rest, actor, steps: RESTORE_ONBOARDING_STEPS, params: { restoreFrom } };
  }

  /** The tenant and, when it was onboarded through the pipeline, its steps (and the error that failed it). */
  async get(id: string): Promise<TenantView> {
    const tenant = view(await this.require(id));
    const state = await this.onboarding.stateOf(id);
    return state?.steps.length ? { ...tenant, steps: state.steps, ...(state.error ? { error: state.error } : {}) } : tenant;
  }

  /**
   * Newest first, keyset-paginated like every list. control.tenants.created_at keeps microseconds
   * while a cursor names a millisecond, so order and comparison both use the millisecond (and the
   * cursor's instant is formatted by PostgreSQL, not rounded by the driver): no row is skipped or
   * repeated when two tenants are created within one millisecond.
   */
  async list(limit: number, cursor?: string): Promise<Page<TenantView>> {
    const window = keysetWindow({ limit, cursor });
    const at = "date_trunc('milliseconds', tenant.created_at)";
    const query = this.db
      .getRepository(TenantEntity)
      .createQueryBuilder('tenant')
      .addSelect(`to_char(${at} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`, 'keyset_at');
    if (window.after) query.where(`(${at}, tenant.id) < (:afterAt, :afterId)`, { afterAt: window.after.createdAt, afterId: window.after.id });
    const { entities, raw } = await query.orderBy(at, 'DESC').addOrderBy('tenant.id', 'DESC').limit(window.take).getRawAndEntities<{ keyset_at: string }>();
    const rows = entities.map((tenant, i) => ({ tenant, id: tenant.id, createdAt: new Date(raw[i].keyset_at) }));
    return toPage(rows, limit, (r) => view(r.tenant));
  }

  async setStatus(id: string, status: 'active' | 'suspended', actor: AuditActor = BY_SYSTEM): Promise<TenantView> {
    const tenant = await this.require(id);
    if (tenant.status !== 'active' && tenant.status !== 'suspended') {
      throw conflict('tenant_state_conflict', `a ${tenant.status} tenant cannot become ${status}`);
    }
    await this.db.transaction(async (em) => {
      await em.getRepository(TenantEntity).update({ id }, { status });
      const action = status === 'suspended' ? 'tenant.suspended' : 'tenant.reactivated';
      await this.audit.record({ action, tenantId: id, actor, details: { from: tenant.status, to: status } }, em);
    });
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
    if (status === 'active') await this.resumeJobs(id);
    return this.get(id);
  }

  /**
   * Maintenance on: the tenant's requests answer 503 tenant_maintenance (every instance, through the
   * registry's invalidation) and its jobs are parked; admin routes are unaffected. Off: back to
   * normal and its parked jobs run now. Repeating either is harmless (the first `since` is kept).
   */
  async setMaintenance(id: string, on: boolean, reason?: string, actor: AuditActor = BY_SYSTEM): Promise<TenantView> {
    const tenant = await this.require(id);
    if (tenant.status !== 'active' && tenant.status !== 'suspended') {
      throw conflict('tenant_state_conflict', `a ${tenant.status} tenant has no maintenance mode`);
    }
    await this.db.transaction(async (em) => {
      await em.query(
        `UPDATE control.tenants
            SET maintenance_since = CASE WHEN $2 THEN coalesce(maintenance_since, now()) END,
                maintenance_reason = CASE WHEN $2 THEN $3 END, updated_at = now()
          WHERE id = $1`,
        [id, on, reason ?? null],
      );
      await this.audit.record({ action: on ? 'tenant.maintenance_on' : 'tenant.maintenance_off', tenantId: id, actor, details: reason ? { reason } : {} }, em);
    });
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
    if (!on && tenant.status === 'active') await this.resumeJobs(id);
    return this.get(id);
  }

  /** Best effort: a parked job nobody promotes still runs after the park delay. */
  private async resumeJobs(tenantId: string): Promise<void> {
    await this.jobs?.promoteParked(tenantId).catch(() => undefined);
  }

  /**
   * One person may belong to several tenants: an existing user (by email) gets a new membership.
   * `password` creates a new user; for an existing one it is refused (409 user_exists_password_ignored)
   * rather than silently ignored, since the caller evidently expected it to take effect.
   */
  async addUser(
    tenantId: string,
    dto: AddTenantUserDto,
    actor: AuditActor = BY_SYSTEM,
  ): Promise<{ id: string; email: string; role: string; tenantId: string; userCreated: boolean }> {
    const tenant = await this.require(tenantId);
    // A tenant being deleted gains no member: offboarding removes memberships once, in one step.
    if (tenant.status !== 'active' && tenant.status !== 'suspended') throw conflict('tenant_state_conflict', `a ${tenant.status} tenant gains no members`);
    const email = dto.email.toLowerCase();
    const passwordHash = dto.password === undefined ? undefined : await hashPassword(dto.password);
    const added = await this.db.transaction(async (em) => {
      let userId: string | undefined;
      let userCreated = false;
      if (passwordHash) {
        // Insert-if-absent in one statement, safe against a concurrent insert of the same email.
        const rows: Array<{ id: string }> = await em.query(
          `INSERT INTO control.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id`,
          [email, passwordHash],
        );
        userCreated = rows.length > 0;
        userId = rows[0]?.id;
      }
      if (!userId) {
        const rows: Array<{ id: string }> = await em.query('SELECT id FROM control.users WHERE email = $1', [email]);
        if (rows.length === 0) throw badRequest('password_required', 'no user has this email yet: send a password (8 or more characters) to create one');
        userId = rows[0].id;
      }
      const inserted: unknown[] = await em.query(
        `INSERT INTO control.memberships (user_id, tenant_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, tenant_id) DO NOTHING RETURNING user_id`,
        [userId, tenantId, dto.role],
      );
      if (inserted.length === 0) throw conflict('membership_exists', 'this user already belongs to the tenant');
      // After the membership check, so re-running an idempotent seed still answers membership_exists.
      if (!userCreated && dto.password !== undefined) {
        throw conflict(
          'user_exists_password_ignored',
          'a user with this email already exists and keeps their own password; nothing was changed: send the request without password to add them',
        );
      }
      await this.audit.record(
        { action: 'member.added', tenantId, actor, details: { userId, role: dto.role, userCreated } },
        em,
      );
      return { id: userId, email, role: dto.role, tenantId, userCreated };
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

