import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import { TIERS, type Tier } from '#strata/control-plane';
import type { Plan } from './plan.catalog';
import { TENANT_SETTINGS_SCHEMA } from './tenant-settings.schema';

const PLAN_ID = /^[a-z][a-z0-9-]{0,38}[a-z0-9]$/;

@ApiSchema({ name: 'PlanQuotas', description: 'null: unlimited' })
export class PlanQuotasView {
  @ApiProperty({ type: Number, nullable: true }) projects: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'invoices created per UTC month' }) invoicesPerMonth: number | null;
  @ApiProperty({ type: Number, nullable: true }) storageBytes: number | null;
  @ApiProperty({ type: Number, nullable: true }) webhookEndpoints: number | null;
}

@ApiSchema({ name: 'PlanCapacity', description: "a tenant's share of one instance (README: Capacity and fairness); null: the instance's default" })
export class PlanCapacityView {
  @ApiProperty({ type: Number, nullable: true, description: 'requests of one tenant in flight at once on one instance' }) maxConcurrentRequests: number | null;
  @ApiProperty({ type: Number, nullable: true, description: "longest statement of a write unit (ms)" }) statementTimeoutMs: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'longest lock wait of a write unit (ms)' }) lockTimeoutMs: number | null;
  @ApiProperty({ type: Number, nullable: true, description: 'longest a write unit may sit idle in its transaction (ms)' }) idleInTransactionTimeoutMs: number | null;
  @ApiProperty({ type: Number, nullable: true, description: "jobs of one tenant running at once per queue on one worker" }) jobConcurrency: number | null;
}

@ApiSchema({ name: 'Plan' })
export class PlanView {
  @ApiProperty({ pattern: PLAN_ID.source, example: 'standard' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: TIERS, description: 'the tier new tenants of this plan are onboarded into by default' }) defaultTier: Tier;
  @ApiProperty({ type: Number, nullable: true, description: 'requests per second (stored and exposed; enforced by the edge); null: unlimited' })
  rateLimitPerSecond: number | null;
  @ApiProperty({ type: PlanQuotasView }) quotas: PlanQuotasView;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'boolean' }, example: { webhooks: true } }) features: Record<string, boolean>;
  @ApiProperty({ type: PlanCapacityView }) capacity: PlanCapacityView;
}

export const toPlanView = (p: Plan): PlanView => ({ ...p, quotas: { ...p.quotas }, features: { ...p.features }, capacity: { ...p.capacity } });

export class ChangePlanDto {
  @ApiProperty({ pattern: PLAN_ID.source, example: 'enterprise', description: 'a plan of GET /admin/plans' })
  @Matches(PLAN_ID, { message: `plan must match ${PLAN_ID.source}` })
  plan: string;
}

const NULL_UNLIMITED = 'null: unlimited; absent: unchanged';

/** PATCH /admin/plans/:id quotas: each optional (unchanged), null for unlimited. */
@ApiSchema({ name: 'PlanQuotasPatch' })
export class PlanQuotasPatch {
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: NULL_UNLIMITED })
  @IsOptional() @IsInt() @Min(0) @Max(2_147_483_647)
  projects?: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: NULL_UNLIMITED })
  @IsOptional() @IsInt() @Min(0) @Max(2_147_483_647)
  invoicesPerMonth?: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: NULL_UNLIMITED })
  @IsOptional() @IsInt() @Min(0) @Max(Number.MAX_SAFE_INTEGER)
  storageBytes?: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 0, description: NULL_UNLIMITED })
  @IsOptional() @IsInt() @Min(0) @Max(2_147_483_647)
  webhookEndpoints?: number | null;
}

/** PATCH /admin/plans/:id: what an operator may change of a plan; absent fields stay as they are. */
@ApiSchema({ name: 'PlanPatch' })
export class UpdatePlanDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200 }) @IsOptional() @IsString() @MinLength(1) @MaxLength(200) name?: string;
  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 1, description: 'requests per second; ' + NULL_UNLIMITED })
  @IsOptional() @IsInt() @Min(1) @Max(2_147_483_647)
  rateLimitPerSecond?: number | null;
  @ApiPropertyOptional({ type: PlanQuotasPatch }) @IsOptional() @IsObject() @ValidateNested() @Type(() => PlanQuotasPatch) quotas?: PlanQuotasPatch;
}

@ApiSchema({ name: 'TenantPlan' })
export class TenantPlanView {
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ type: PlanView }) plan: PlanView;
}

@ApiSchema({ name: 'UsageMetric' })
export class UsageMetricView {
  @ApiProperty() used: number;
  @ApiProperty({ type: Number, nullable: true, description: 'null: unlimited' }) limit: number | null;
}

@ApiSchema({ name: 'Usage' })
export class UsageView {
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ example: 'standard' }) plan: string;
  @ApiProperty({ example: '2026-12', description: 'the UTC month invoicesPerMonth counts' }) period: string;
  @ApiProperty({ type: UsageMetricView }) projects: UsageMetricView;
  @ApiProperty({ type: UsageMetricView }) invoicesPerMonth: UsageMetricView;
  @ApiProperty({ type: UsageMetricView, description: 'exact: the bytes of the stored files' }) storageBytes: UsageMetricView;
  @ApiProperty({ type: UsageMetricView }) webhookEndpoints: UsageMetricView;
}

/** OpenAPI shape of the settings object (the ajv schema in tenant-settings.schema.ts decides). */
@ApiSchema({ name: 'TenantSettingsValues' })
export class TenantSettingsValues {
  @ApiPropertyOptional({ maxLength: 64, example: 'Europe/Paris' }) timezone?: string;
  @ApiPropertyOptional({ pattern: TENANT_SETTINGS_SCHEMA.properties.locale.pattern, example: 'fr-FR' }) locale?: string;
  @ApiPropertyOptional({ pattern: TENANT_SETTINGS_SCHEMA.properties.currency.pattern, example: 'EUR' }) currency?: string;
  @ApiPropertyOptional({ maxLength: 12, example: 'INV-' }) invoicePrefix?: string;
  @ApiPropertyOptional({ enum: ['monday', 'sunday'] }) weekStartsOn?: 'monday' | 'sunday';
  @ApiPropertyOptional({ type: 'object', properties: { invoiceOverdue: { type: 'boolean' }, weeklyDigest: { type: 'boolean' } } })
  notifications?: { invoiceOverdue?: boolean; weeklyDigest?: boolean };
}

@ApiSchema({ name: 'TenantSettings' })
export class TenantSettingsView {
  @ApiProperty({ example: 'standard' }) plan: string;
  @ApiProperty({ type: TenantSettingsValues }) settings: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'boolean' }, description: "the plan's flags with the operators' overrides applied" })
  features: Record<string, boolean>;
}

/** PATCH /admin/tenants/:id/settings: a merge patch of the settings and/or flag overrides (null drops one). */
@ApiSchema({ name: 'AdminSettingsPatch' })
export class AdminSettingsPatchDoc {
  @ApiPropertyOptional({ type: TenantSettingsValues, description: 'JSON merge patch: null removes a key' }) settings?: Record<string, unknown>;
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'boolean', nullable: true }, description: 'flag → true/false overrides the plan; null drops the override' })
  features?: Record<string, boolean | null>;
}
