import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { CONTROL_DATA_SOURCE, type TenantStatus, type Tier } from '#strata/control-plane';
import { CHECKPOINT_COMMIT, LeasedTable, rowsOf } from '#strata/leases';
import type { OnboardingOwner, OnboardingRecord, OnboardingStepView } from './onboarding.types';

const COLUMNS = `tenant_id, steps, owner_email, owner_password_hash, params, home_created, error, lease_owner, lease_until, created_at, finished_at`;
const OPEN = `finished_at IS NULL`;
const LEASED = new LeasedTable({ table: 'control.tenant_onboardings', key: 'tenant_id', open: OPEN, order: 'created_at', columns: COLUMNS });
// The claim and the step writes are checkpoints (CHECKPOINT_COMMIT); `finish` is the durable end.
const CLAIM = LEASED.claim({ where: ['($3::uuid IS NULL OR tenant_id = $3)'], checkpoint: true });
const RENEW = LEASED.renew();
const RELEASE = LEASED.release({ set: ['steps = $4::jsonb', 'home_created = home_created OR $5'], openOnly: true });

type Row = Record<string, unknown>;
const toRecord = (r: Row): OnboardingRecord => ({
  tenantId: r.tenant_id as string,
  steps: (r.steps as OnboardingStepView[]) ?? [],
  ownerEmail: (r.owner_email as string | null) ?? null,
  ownerPasswordHash: (r.owner_password_hash as string | null) ?? null,
  params: (r.params as Record<string, unknown>) ?? {},
  homeCreated: r.home_created as boolean,
  error: (r.error as string | null) ?? null,
  leaseOwner: (r.lease_owner as string | null) ?? null,
  leaseUntil: (r.lease_until as Date | null) ?? null,
  createdAt: r.created_at as Date,
  finishedAt: (r.finished_at as Date | null) ?? null,
});

export interface NewTenant {
  slug: string;
  name: string;
  tier: Tier;
  poolId: string;
  plan: string;
  schemaName: string;
  databaseName: string | null;
}

/**
 * control.tenant_onboardings, one query per method. Every change an executor makes is conditional
 * on it still holding the lease (`lease_owner`), so a process that lost its claim changes nothing.
 */
@Injectable()
export class TenantOnboardingsRepository {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  /** The plan's default tier (control.plans, migrations/control/0009), or null when no such plan exists. */
  async defaultTierOf(plan: string): Promise<Tier | null> {
    const rows = (await this.db.query(`SELECT default_tier FROM control.plans WHERE id = $1`, [plan])) as Array<{ default_tier: Tier }>;
    return rows[0]?.default_tier ?? null;
  }

  /**
   * The tenant record (`provisioning`) and its onboarding with every step pending, in one
   * statement: no tenant is `provisioning` without its steps. A taken slug fails it (23505).
   */
  async insert(
    tenant: NewTenant,
    stepNames: readonly string[],
    owner: OnboardingOwner | null,
    params: Record<string, unknown> = {},
    em?: EntityManager,
  ): Promise<{ id: string; slug: string }> {
    const steps: OnboardingStepView[] = stepNames.map((name) => ({ name, state: 'pending', attempts: 0, error: null }));
    const rows = rowsOf(await (em ?? this.db).query(
      `WITH t AS (
         INSERT INTO control.tenants (slug, name, tier, pool_id, status, plan, region, settings, schema_name, database_name)
         VALUES ($1, $2, $3, $4, 'provisioning', $5, 'local', '{}'::jsonb, $6, $7) RETURNING id, slug),
       o AS (INSERT INTO control.tenant_onboardings (tenant_id, steps, owner_email, owner_password_hash, params)
             SELECT id, $8::jsonb, $9, $10, $11::jsonb FROM t)
       SELECT id, slug FROM t`,
      [tenant.slug, tenant.name, tenant.tier, tenant.poolId, tenant.plan, tenant.schemaName, tenant.databaseName,
        JSON.stringify(steps), owner?.email ?? null, owner?.passwordHash ?? null, JSON.stringify(params)],
    ));
    return { id: rows[0].id as string, slug: rows[0].slug as string };
  }

  async findByTenant(tenantId: string): Promise<OnboardingRecord | null> {
    const rows = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_onboardings WHERE tenant_id = $1`, [tenantId]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /**
   * The signup that took `slug`: its tenant and the owner it was started for (email, password hash);
   * null when no tenant holds the slug or it was not a signup (no owner on its onboarding).
   */
  async signupBySlug(slug: string): Promise<{ id: string; slug: string; ownerEmail: string; ownerPasswordHash: string } | null> {
    const rows = rowsOf(await this.db.query(
      `SELECT t.id, t.slug, o.owner_email, o.owner_password_hash FROM control.tenants t JOIN control.tenant_onboardings o ON o.tenant_id = t.id
        WHERE t.slug = $1 AND o.owner_email IS NOT NULL AND o.owner_password_hash IS NOT NULL`,
      [slug],
    ));
    const r = rows[0];
    return r ? { id: r.id as string, slug: r.slug as string, ownerEmail: r.owner_email as string, ownerPasswordHash: r.owner_password_hash as string } : null;
  }

  /** The tenant's status with its onboarding's steps and error, in one read; null when there is no such tenant. */
  async stateOf(tenantId: string): Promise<{ status: TenantStatus; steps: OnboardingStepView[]; error: string | null } | null> {
    const rows = rowsOf(await this.db.query(
      `SELECT t.status, o.steps, o.error FROM control.tenants t LEFT JOIN control.tenant_onboardings o ON o.tenant_id = t.id WHERE t.id = $1`,
      [tenantId],
    ));
    if (!rows[0]) return null;
    return { status: rows[0].status as TenantStatus, steps: (rows[0].steps as OnboardingStepView[] | null) ?? [], error: (rows[0].error as string | null) ?? null };
  }

  /**
   * Claims an open onboarding nobody holds (or whose holder's lease ran out, or whose back-off is
   * over): the oldest, or `tenantId`'s when given (the request that started it runs it at once).
   */
  async claim(owner: string, leaseMs: number, tenantId: string | null = null): Promise<OnboardingRecord | null> {
    const rows = rowsOf(await this.db.query(CLAIM, [owner, leaseMs, tenantId]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Extends the lease; false when another process has taken the onboarding over. */
  async renew(tenantId: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(RENEW, [tenantId, owner, leaseMs]));
    return rows.length === 1;
  }

  /**
   * Writes the steps as the executor now sees them (and home_created once set); false when the
   * lease is gone. A checkpoint: durable with `finish` (or lost with a crash of the server before
   * it, when the step runs again — every step is idempotent).
   */
  async saveSteps(tenantId: string, owner: string, steps: OnboardingStepView[], homeCreated: boolean): Promise<boolean> {
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_onboardings SET steps = $3::jsonb, home_created = home_created OR $4
        WHERE ${LEASED.held} RETURNING tenant_id, ${CHECKPOINT_COMMIT}`,
      [tenantId, owner, JSON.stringify(steps), homeCreated],
    ));
    return rows.length === 1;
  }

  /** Gives the onboarding back after a failed attempt, claimable again after `delayMs` (the back-off). */
  async release(tenantId: string, owner: string, steps: OnboardingStepView[], homeCreated: boolean, delayMs: number): Promise<void> {
    await this.db.query(RELEASE, [tenantId, owner, delayMs, JSON.stringify(steps), homeCreated]);
  }

  /**
   * Ends the onboarding and sets the tenant's status in the same statement: `active` (at the schema
   * version reached) or `failed`. Null when the lease was lost (nothing changed).
   */
  async finish(
    tenantId: string,
    owner: string,
    steps: OnboardingStepView[],
    outcome: { status: 'active'; schemaVersion: string } | { status: 'failed'; error: string },
    em?: EntityManager,
  ): Promise<boolean> {
    const rows = rowsOf(await (em ?? this.db).query(
      `WITH o AS (
         UPDATE control.tenant_onboardings SET steps = $3::jsonb, error = $5, finished_at = now(), ${LEASED.letGo}
          WHERE ${LEASED.held} RETURNING tenant_id)
       UPDATE control.tenants t SET status = $4, schema_version = coalesce($6, t.schema_version), updated_at = now()
         FROM o WHERE t.id = o.tenant_id AND t.status = 'provisioning' RETURNING t.id`,
      [tenantId, owner, JSON.stringify(steps), outcome.status, outcome.status === 'failed' ? outcome.error : null, outcome.status === 'active' ? outcome.schemaVersion : null],
    ));
    return rows.length === 1;
  }

  /**
   * Default settings a new tenant starts with; the ones already set win (a retried step changes
   * nothing). A checkpoint, like the step writes: the tenant is not reachable before `finish`.
   */
  async seedSettings(tenantId: string, defaults: Record<string, unknown>): Promise<void> {
    await this.db.query(`UPDATE control.tenants SET settings = $2::jsonb || settings WHERE id = $1 RETURNING ${CHECKPOINT_COMMIT}`, [tenantId, JSON.stringify(defaults)]);
  }

  /** The first owner: the user (made if absent, by email) and their membership, in one statement; again is a no-op. A checkpoint. */
  async addOwner(tenantId: string, owner: OnboardingOwner): Promise<string> {
    const rows = rowsOf(await this.db.query(
      `WITH made AS (
         INSERT INTO control.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id),
       u AS (SELECT id FROM made UNION ALL SELECT id FROM control.users WHERE email = $1 LIMIT 1),
       m AS (INSERT INTO control.memberships (user_id, tenant_id, role) SELECT id, $3, 'owner' FROM u
             ON CONFLICT (user_id, tenant_id) DO NOTHING)
       SELECT id, ${CHECKPOINT_COMMIT} FROM u`,
      [owner.email, owner.passwordHash, tenantId],
    ));
    return rows[0].id as string;
  }
}
