import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ApiException, badRequest, notFound } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, TENANT_CHANGE_PUBLISHER, TenantEntity, TenantRegistry, type AuditActor, type AuditTrail, type TenantChangePublisher } from '#strata/control-plane';
import { placementOf, TenantConnectionManager, TenantContext } from '#strata/tenancy/platform';
import { PlanCatalog, type Plan } from './plan.catalog';
import { PlansErrorCode, QUOTA_METRICS } from './plans.errors';
import { toPlanView, type PlanView, type TenantPlanView, type TenantSettingsView, type UpdatePlanDto, type UsageView } from './plans.dto';
import { mergeFeatureOverrides, mergeSettings } from './tenant-settings.schema';
import { counterOf, readUsage, usagePeriod } from './usage.counters';

const tenantNotFound = () => notFound(PlansErrorCode.tenantNotFound, 'tenant not found');
const planNotFound = (id: string) => notFound(PlansErrorCode.planNotFound, `no plan ${id}; GET /admin/plans lists them`);
const PLAN_ID = /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/;

/** The editable fields of a plan and their columns (fixed names: only values are bound). */
const PLAN_COLUMNS = {
  name: 'name',
  rateLimitPerSecond: 'rate_limit_per_second',
  projects: 'max_projects',
  invoicesPerMonth: 'max_invoices_per_month',
  storageBytes: 'max_storage_bytes',
  webhookEndpoints: 'max_webhook_endpoints',
} as const;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Plans, usage and settings as the API shows them. Settings and flag overrides live on the tenant
 * record, so the registry caches them with the tenant and every change reaches every instance
 * through the registry's invalidation (TENANT_CHANGE_PUBLISHER): GET /settings reads no database.
 */
@Injectable()
export class PlansService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly catalog: PlanCatalog,
    private readonly registry: TenantRegistry,
    private readonly context: TenantContext,
    private readonly connections: TenantConnectionManager,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    // Absent without Redis: then only this instance's registry learns of a change (others wait a TTL).
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
  ) {}

  async plans(): Promise<PlanView[]> {
    return (await this.catalog.list()).map(toPlanView);
  }

  /**
   * An operator's edit of a plan's name, rate limit or quotas (absent: unchanged; null: unlimited),
   * audited with the values it set in the same transaction; then every instance drops its registry
   * and its plan catalogue (the registry's invalidate-all), so the new limits hold at the next
   * request everywhere. Usage already counted stays; lowering a quota refuses creates from then on.
   */
  async updatePlan(id: string, patch: UpdatePlanDto, actor: AuditActor): Promise<PlanView> {
    if (!PLAN_ID.test(id)) throw planNotFound(id);
    const changed: Partial<Record<keyof typeof PLAN_COLUMNS, string | number | null>> = {};
    if (patch.name !== undefined) changed.name = patch.name;
    if (patch.rateLimitPerSecond !== undefined) changed.rateLimitPerSecond = patch.rateLimitPerSecond;
    for (const metric of QUOTA_METRICS) if (patch.quotas?.[metric] !== undefined) changed[metric] = patch.quotas[metric];
    const fields = Object.keys(changed) as Array<keyof typeof PLAN_COLUMNS>;
    if (fields.length) {
      await this.db.transaction(async (em) => {
        const sets = fields.map((f, i) => `${PLAN_COLUMNS[f]} = $${i + 2}`).join(', ');
        const rows = (await em.query(`UPDATE control.plans SET ${sets} WHERE id = $1 RETURNING id`, [id, ...fields.map((f) => changed[f])])) as [unknown[], number];
        if (!rows[0]?.length) throw planNotFound(id);
        await this.audit.record({ action: 'plan.updated', tenantId: null, actor, details: { plan: id, changed } }, em);
      });
      this.catalog.refresh();
      if (this.changes) await this.changes.publishAllChanged();
      else this.registry.invalidateAll();
    }
    const plan = await this.catalog.get(id);
    if (!plan) throw planNotFound(id);
    return toPlanView(plan);
  }

  /** Takes effect at the next request on every instance; quotas already used stay counted. */
  async changePlan(tenantId: string, planId: string, actor: AuditActor): Promise<TenantPlanView> {
    const plan = await this.catalog.get(planId);
    if (!plan) throw badRequest(PlansErrorCode.invalidPlan, `no plan ${planId}; GET /admin/plans lists them`);
    const tenant = await this.liveTenant(tenantId);
    await this.db.transaction(async (em) => {
      await em.getRepository(TenantEntity).update({ id: tenant.id }, { plan: plan.id });
      await this.audit.record({ action: 'tenant.plan_changed', tenantId: tenant.id, actor, details: { from: tenant.plan, to: plan.id } }, em);
    });
    await this.published(tenant);
    return { tenantId: tenant.id, plan: toPlanView(plan) };
  }

  /** The current tenant's usage: one read unit on its home (one statement). */
  async currentUsage(): Promise<UsageView> {
    const { tenant } = this.context.requireTenant('reading usage', 'usage');
    const record = await this.registry.recordOf(tenant);
    if (!record) throw tenantNotFound();
    return this.usage(record.id, await this.planOf(record));
  }

  /** An operator's look at a tenant's usage: read as that tenant, on its home. */
  async usageOf(tenantId: string): Promise<UsageView> {
    const record = await this.liveTenant(tenantId);
    const plan = await this.planOf(record);
    return this.context.run({ tenant: placementOf(record) }, () => this.usage(record.id, plan));
  }

  /** From the registry's cached tenant record: no database round trip on a warm cache. */
  async currentSettings(): Promise<TenantSettingsView> {
    const { tenant } = this.context.requireTenant('reading settings', 'settings');
    const record = await this.registry.recordOf(tenant);
    if (!record) throw tenantNotFound();
    return this.settingsView(record);
  }

  async settingsOf(tenantId: string): Promise<TenantSettingsView> {
    return this.settingsView(await this.liveTenant(tenantId));
  }

  /** The owner's merge patch of the current tenant's settings. */
  async patchCurrentSettings(patch: unknown): Promise<TenantSettingsView> {
    const { tenant, userId } = this.context.requireTenant('changing settings', 'settings');
    return this.patch(tenant.id, { settings: patch }, '', { type: 'user', id: userId ?? null });
  }

  /** An operator's change: settings (merge patch) and/or feature-flag overrides. */
  async patchSettingsOf(tenantId: string, body: unknown, actor: AuditActor): Promise<TenantSettingsView> {
    if (!isObject(body)) throw badRequest(PlansErrorCode.validationFailed, 'body must be a JSON object');
    const unknown = Object.keys(body).filter((k) => k !== 'settings' && k !== 'features');
    if (unknown.length) {
      throw new ApiException(400, PlansErrorCode.validationFailed, `unknown fields: ${unknown.slice(0, 5).join(', ')}`, {},
        unknown.slice(0, 10).map((field) => ({ field, code: 'unknown_field', message: `property ${field} should not exist` })));
    }
    return this.patch(tenantId, body, 'settings', actor);
  }

  /**
   * Read-merge-write under the row's lock, so two concurrent patches both land; then every
   * instance drops the cached record.
   */
  private async patch(tenantId: string, body: { settings?: unknown; features?: unknown }, settingsField: string, actor: AuditActor): Promise<TenantSettingsView> {
    const updated = await this.db.transaction(async (em) => {
      const tenant = await em.getRepository(TenantEntity).findOne({ where: { id: tenantId }, lock: { mode: 'pessimistic_write' } });
      if (!tenant || tenant.status === 'deleted') throw tenantNotFound();
      const settings = body.settings === undefined ? tenant.settings : mergeSettings(tenant.settings, body.settings, settingsField);
      const featureOverrides = body.features === undefined ? tenant.featureOverrides : mergeFeatureOverrides(tenant.featureOverrides, body.features);
      await em.query(`UPDATE control.tenants SET settings = $2::jsonb, feature_overrides = $3::jsonb, updated_at = now() WHERE id = $1`, [
        tenant.id,
        JSON.stringify(settings),
        JSON.stringify(featureOverrides),
      ]);
      // Which keys changed, not their values: settings may be whatever a tenant keeps there.
      const changed = { settings: body.settings === undefined ? [] : Object.keys(body.settings as object), features: body.features === undefined ? [] : Object.keys(body.features as object) };
      await this.audit.record({ action: 'tenant.settings_changed', tenantId: tenant.id, actor, details: changed }, em);
      return { ...tenant, settings, featureOverrides };
    });
    await this.published(updated);
    return this.settingsView(updated);
  }

  private async settingsView(record: TenantEntity): Promise<TenantSettingsView> {
    const plan = await this.planOf(record);
    return { plan: plan.id, settings: record.settings, features: { ...plan.features, ...record.featureOverrides } };
  }

  private async usage(tenantId: string, plan: Plan): Promise<UsageView> {
    const period = usagePeriod();
    const counters = QUOTA_METRICS.map((m) => counterOf(m, period));
    const used = await this.connections.read((em) => readUsage(em, tenantId, counters));
    const metric = (m: (typeof QUOTA_METRICS)[number]) => ({ used: used.get(counterOf(m, period)) ?? 0, limit: plan.quotas[m] });
    return {
      tenantId,
      plan: plan.id,
      period,
      projects: metric('projects'),
      invoicesPerMonth: metric('invoicesPerMonth'),
      storageBytes: metric('storageBytes'),
      webhookEndpoints: metric('webhookEndpoints'),
    };
  }

  /** The record's plan from the catalogue; a plan missing from it is a broken database, not a bad request. */
  private async planOf(record: TenantEntity): Promise<Plan> {
    const plan = await this.catalog.get(record.plan);
    // tenants.plan references plans (migrations/control/0009): this is a broken database, not a request.
    if (!plan) throw new Error(`tenant ${record.id} names plan ${record.plan}, which does not exist`);
    return plan;
  }

  private async liveTenant(id: string): Promise<TenantEntity> {
    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id });
    if (!tenant || tenant.status === 'deleted') throw tenantNotFound();
    return tenant;
  }

  private async published(tenant: { id: string; slug: string }): Promise<void> {
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
  }
}
