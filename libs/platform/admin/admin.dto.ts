import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsEmail, IsIn, IsOptional, IsString, IsUUID, Matches, MaxLength, MinLength } from 'class-validator';
import { OnboardingStepView } from '#strata/onboarding';
import { MEMBERSHIP_ROLES, TIERS, type MembershipRole, type Tier, type TenantStatus } from '#strata/control-plane';

const SLUG = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
const PLAN = /^[a-z][a-z0-9-]{0,38}$/;
const TENANT_STATUSES: readonly TenantStatus[] = ['provisioning', 'active', 'suspended', 'failed', 'deleting', 'deleted'];

export class CreateTenantDto {
  @ApiProperty({ pattern: SLUG, example: 'acme', description: 'names the tenant on the wire (X-Tenant, /t/{slug}, {slug}.BASE_DOMAIN)' })
  @Matches(SLUG, { message: 'slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$' })
  slug: string;

  @ApiProperty({ minLength: 1, maxLength: 200 }) @IsString() @MinLength(1) @MaxLength(200) name: string;

  @ApiPropertyOptional({ enum: TIERS, description: "default: the plan's default tier (GET /admin/plans)" }) @IsOptional() @IsIn(TIERS as Tier[]) tier?: Tier;

  @ApiPropertyOptional({ pattern: PLAN, default: 'standard' }) @IsOptional() @Matches(PLAN) plan?: string;

  /** Host it on a specific pool; defaults to the tier's default pool. */
  @ApiPropertyOptional({ pattern: SLUG, description: "a registered pool of the tier's kind; default: the tier's default pool" })
  @IsOptional() @Matches(SLUG) poolId?: string;

  /** Fill the new home from a done export (libs/platform/exports): same row ids, files back, verified first. */
  @ApiPropertyOptional({ format: 'uuid', description: "a done export (POST /admin/tenants/{id}/exports) to restore into the new tenant: its rows with the same ids and its files; the archive is verified before anything is created" })
  @IsOptional() @IsUUID() restoreFrom?: string;
}

/** `POST /admin/tenants?async=true`: answer 202 at once and let an executor onboard it. */
export class CreateTenantQuery {
  @ApiPropertyOptional({ type: Boolean, default: false, description: 'answer 202 at once (status provisioning); poll GET /admin/tenants/{id} until active' })
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'async must be true or false' })
  async?: boolean;
}

export class AddTenantUserDto {
  @ApiProperty({ format: 'email', maxLength: 254 }) @IsEmail() @MaxLength(254) email: string;
  /** Creates the user when no user has this email; must be left out for an existing user (their password is theirs). */
  @ApiPropertyOptional({ minLength: 8, maxLength: 1024, description: 'creates the user when no user has this email; leave it out for an existing user (409 user_exists_password_ignored otherwise)' })
  @IsOptional() @IsString() @MinLength(8) @MaxLength(1024) password?: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) @IsIn(MEMBERSHIP_ROLES as MembershipRole[]) role: MembershipRole;
}

export class MaintenanceDto {
  @ApiProperty({ description: "true: the tenant's requests answer 503 tenant_maintenance and its jobs wait; false: back to normal" })
  @IsBoolean() on: boolean;
  @ApiPropertyOptional({ maxLength: 500, description: 'why, for operators (never shown to the tenant)' })
  @IsOptional() @IsString() @MaxLength(500) reason?: string;
}

/** A tenant record as operators see it. */
@ApiSchema({ name: 'Tenant' })
export class TenantView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ pattern: SLUG }) slug: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: TIERS }) tier: Tier;
  @ApiProperty({ enum: TENANT_STATUSES }) status: TenantStatus;
  @ApiProperty() poolId: string;
  @ApiProperty() plan: string;
  @ApiProperty() region: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'when maintenance mode was switched on; null when it is off' })
  maintenanceSince: Date | null;
  @ApiProperty({ type: String, nullable: true }) maintenanceReason: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt: Date;
  @ApiPropertyOptional({ type: [OnboardingStepView], description: "the onboarding pipeline's steps (tenants onboarded through it)" })
  steps?: OnboardingStepView[];
  @ApiPropertyOptional({ description: 'why onboarding failed (status failed): the step and its error' }) error?: string;
}

/** The user a membership was added for. */
@ApiSchema({ name: 'TenantUser' })
export class TenantUserView {
  @ApiProperty({ format: 'uuid', description: "the user's id (the `sub` of their tokens)" }) id: string;
  @ApiProperty({ format: 'email' }) email: string;
  @ApiProperty({ enum: MEMBERSHIP_ROLES }) role: string;
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ description: 'true when this created the user (with the password given)' }) userCreated: boolean;
}
