import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsEmail, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { TENANT_STATUSES_ON_THE_WIRE } from './onboarding.types';

const SLUG = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
const PLAN = /^[a-z][a-z0-9-]{0,38}$/;

export class SignupDto {
  @ApiProperty({ minLength: 1, maxLength: 200, example: 'Initech' }) @IsString() @MinLength(1) @MaxLength(200) company: string;

  @ApiProperty({ pattern: SLUG.source, example: 'initech', description: 'names the tenant on the wire (X-Tenant, /t/{slug}, {slug}.BASE_DOMAIN)' })
  @Matches(SLUG, { message: 'slug must match ^[a-z][a-z0-9-]{1,38}[a-z0-9]$' })
  slug: string;

  @ApiProperty({ format: 'email', maxLength: 254, description: "the tenant's first owner" }) @IsEmail() @MaxLength(254) email: string;

  @ApiProperty({ minLength: 8, maxLength: 1024, description: "the owner's password; for an email that already has a user, that user's password" })
  @IsString() @MinLength(8) @MaxLength(1024) password: string;

  @ApiPropertyOptional({ pattern: PLAN.source, default: 'standard' }) @IsOptional() @Matches(PLAN) plan?: string;
}

/** A signup and where it stands. */
@ApiSchema({ name: 'Signup' })
export class SignupView {
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty() slug: string;
  @ApiProperty({ enum: TENANT_STATUSES_ON_THE_WIRE, description: '`provisioning` until its steps are done, then `active` (or `failed`)' }) status: string;
  @ApiProperty({ example: '/signup/3f0c…', description: 'where to poll until the status is `active`' }) poll: string;
  @ApiProperty({ example: '/t/initech/auth/login', description: 'where the owner logs in once it is `active`' }) login: string;
}
